"""What each allowlisted Stripe event does to the local state."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing.repository import find_by_stripe
from callcov.billing.stripe_provider import subscription_fields
from callcov.billing.subscription_state import plan_changed
from callcov.kit.time import utcnow
from callcov.models import Invoice, Subscription

logger = logging.getLogger("callcov.billing.events")

ENDED = frozenset({"canceled", "incomplete_expired"})


def _invoice_subscription(obj: dict[str, Any]) -> str | None:
    found = obj.get("subscription")
    if isinstance(found, dict):
        found = found.get("id")
    if not found:  # newer API versions
        details = ((obj.get("parent") or {}).get("subscription_details")) or {}
        found = details.get("subscription")
    return str(found) if found else None


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


async def apply(
    session: AsyncSession,
    kind: str,
    created: int,
    payload: dict[str, Any],
    plan_tiers: dict[str, str],
    *,
    max_attempts: int = 50,
) -> str:
    """Returns the event's final status: ``processed`` or ``ignored`` (no matching account)."""
    obj: dict[str, Any] = (payload.get("data") or {}).get("object") or {}
    is_invoice = kind.startswith("invoice.")
    stripe_sub = _invoice_subscription(obj) if is_invoice else obj.get("id")
    customer = obj.get("customer")
    sub = await find_by_stripe(
        session, subscription_id=stripe_sub, customer_id=customer if isinstance(customer, str) else None
    )
    if sub is None:
        logger.info("Stripe event %s for an unknown customer %s: ignored", kind, customer)
        return "ignored"
    if is_invoice:
        await _record_invoice(session, sub, kind, obj)
    if sub.stripe_event_at is not None and created < sub.stripe_event_at:
        logger.info("Stripe event %s (created %s) is older than the state applied: no change", kind, created)
        return "processed"
    if _applies(sub, kind, stripe_sub, created):
        tier_before, period_before = sub.tier, sub.current_period_start
        _apply_state(sub, kind, obj, plan_tiers)
        sub.stripe_event_at = created
        sub.updated_at = utcnow()
        session.add(sub)
        if sub.tier != tier_before:  # changed in Stripe (portal, dashboard) or ended there
            at = _time(created) or utcnow()
            await plan_changed(session, sub, tier_before, period_before, at, max_attempts=max_attempts)
    return "processed"


def _applies(sub: Subscription, kind: str, stripe_sub: str | None, created: int) -> bool:
    """Events of another Stripe subscription (an earlier one of the account) change nothing, except
    that a subscription created outside CallCov (dashboard, portal) is adopted when there is none and
    the event is strictly newer than the last one applied (a late ``created`` of a subscription that
    was deleted in the same second must not bring it back)."""
    if stripe_sub is None:
        return False
    if sub.stripe_subscription_id == stripe_sub:
        return True
    newer = sub.stripe_event_at is None or created > sub.stripe_event_at
    return kind == "customer.subscription.created" and sub.stripe_subscription_id is None and newer


def _apply_state(sub: Subscription, kind: str, obj: dict[str, Any], plan_tiers: dict[str, str]) -> None:
    if kind == "invoice.payment_failed":
        sub.status = "past_due"
        return
    if kind == "invoice.paid":
        if sub.status in ("past_due", "unpaid", "incomplete"):
            sub.status = "active"
        return
    fields = subscription_fields(obj)
    if kind == "customer.subscription.deleted" or fields["status"] in ENDED:
        sub.tier, sub.status, sub.cancel_at_period_end = "free", "active", False
        sub.stripe_subscription_id, sub.canceled_at = None, utcnow()
        return
    sub.stripe_subscription_id = obj["id"]
    sub.provider = "stripe"
    sub.tier = plan_tiers.get(fields["plan_id"], sub.tier)
    sub.status = fields["status"] or sub.status
    sub.cancel_at_period_end = fields["cancel_at_period_end"]
    sub.current_period_start = fields["period_start"] or sub.current_period_start
    sub.current_period_end = fields["period_end"] or sub.current_period_end


async def _record_invoice(session: AsyncSession, sub: Subscription, kind: str, obj: dict[str, Any]) -> None:
    invoice_id = obj.get("id")
    if not invoice_id:
        return
    row = (await session.exec(select(Invoice).where(Invoice.stripe_invoice_id == invoice_id))).first()
    if row is None:
        row = Invoice(
            user_id=sub.user_id,
            provider="stripe",
            stripe_invoice_id=invoice_id,
            status="open",
            tier=sub.tier,
            amount_due=int(obj.get("amount_due") or 0),
            created_at=_time(obj.get("created")) or utcnow(),
        )
    if row.status != "paid":  # paid is final: a late payment_failed does not undo it
        row.status = "paid" if kind == "invoice.paid" else str(obj.get("status") or "open")
    row.amount_due = int(obj.get("amount_due") or row.amount_due)
    row.amount_paid = max(row.amount_paid, int(obj.get("amount_paid") or 0))
    row.currency = str(obj.get("currency") or "usd")[:3]
    row.hosted_invoice_url = obj.get("hosted_invoice_url") or row.hosted_invoice_url
    row.description = (obj.get("description") or row.description or "Stripe invoice")[:500]
    row.period_start = _time(obj.get("period_start")) or row.period_start
    row.period_end = _time(obj.get("period_end")) or row.period_end
    session.add(row)
