"""Inbound Stripe events: verified with ``stripe.Webhook.construct_event``, stored once by event id
(``ON CONFLICT DO NOTHING``), and processed by a job. Processing is idempotent (a processed event is
skipped) and ordered by Stripe's ``created``: an event older than the newest one applied to the
subscription does not change its state (invoices are still recorded, and a paid invoice stays paid)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import stripe
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing import stripe_events
from callcov.billing.errors import InvalidStripeSignature, StripeWebhookNotConfigured
from callcov.billing.schemas import WebhookReceipt
from callcov.config import BillingSettings
from callcov.db import insert_ignoring_conflict
from callcov.kit.time import utcnow
from callcov.models import BillingEvent
from callcov.worker import queue
from callcov.worker.wake import Waker, wake_after_commit

logger = logging.getLogger("callcov.billing.stripe_webhook")

STRIPE_EVENT_JOB = "billing.stripe_event"
ALLOWED_TYPES = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)


def verify(payload: bytes, signature: str | None, secret: str, tolerance_s: int) -> dict[str, Any]:
    if not signature:
        raise InvalidStripeSignature("The Stripe-Signature header is missing")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance_s)
    except stripe.SignatureVerificationError as exc:
        raise InvalidStripeSignature() from exc
    except ValueError as exc:  # the body is not JSON
        raise InvalidStripeSignature("The body is not a Stripe event") from exc
    data = json.loads(payload)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), str)
        or not isinstance(data.get("type"), str)
    ):
        raise InvalidStripeSignature("The body is not a Stripe event")
    assert event.id == data["id"]
    return data


async def receive(
    session: AsyncSession,
    settings: BillingSettings,
    payload: bytes,
    signature: str | None,
    *,
    waker: Waker,
) -> WebhookReceipt:
    if not settings.stripe_webhook_secret:
        raise StripeWebhookNotConfigured()
    event = verify(payload, signature, settings.stripe_webhook_secret, settings.webhook_tolerance_s)
    allowed = event["type"] in ALLOWED_TYPES
    now = utcnow()
    row = BillingEvent(
        stripe_event_id=event["id"],
        type=event["type"][:64],
        stripe_created=int(event.get("created") or 0),
        payload=event,
        status="received" if allowed else "ignored",
        created_at=now,
        processed_at=None if allowed else now,
    )
    if not await insert_ignoring_conflict(session, row, conflict_on=["stripe_event_id"]):
        return WebhookReceipt(duplicate=True, processed=allowed)
    if allowed:
        queue.enqueue(
            session, STRIPE_EVENT_JOB, {"event_id": str(row.id)}, max_attempts=settings.job_max_attempts
        )
        wake_after_commit(session, waker, STRIPE_EVENT_JOB)
    return WebhookReceipt(processed=allowed)


async def process(
    session: AsyncSession, event_id: uuid.UUID, plan_tiers: dict[str, str], *, max_attempts: int = 50
) -> None:
    """Apply one stored event, once (the job's handler; the caller commits)."""
    query = select(BillingEvent).where(BillingEvent.id == event_id).with_for_update()
    event = (await session.exec(query)).first()
    if event is None or event.processed_at is not None:
        return
    event.status = await stripe_events.apply(
        session, event.type, event.stripe_created, event.payload, plan_tiers, max_attempts=max_attempts
    )
    event.processed_at = utcnow()
    session.add(event)
