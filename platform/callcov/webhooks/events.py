"""The outbox: an event row (and its delivery job) written in the caller's transaction, so a change
that must be announced always has its event, and one that rolled back never has.

The outbox knows nothing of what it delivers: the caller gives the account and mode (which secret
signs), the URL, the event type, the body (already serialised to JSON-ready data, stored as given and
sent byte for byte on every retry) and an opaque subject id that groups the events of one thing (the
``analysis_id`` column), so that a new URL can supersede them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.kit.time import utcnow
from callcov.models import WebhookEvent
from callcov.worker import queue

WEBHOOK_JOB = "webhook"
# Each retry claims the job again; generous so only a handler that keeps crashing gives up.
JOB_MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class NewEvent:
    """One event to deliver."""

    account_id: uuid.UUID
    livemode: bool
    subject_id: uuid.UUID
    url: str
    event_type: str
    payload: dict[str, Any]


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def message_id(event_id: uuid.UUID) -> str:
    """The ``webhook-id`` header: one per event, the same on every retry."""
    return f"msg_{event_id.hex}"


def record(session: AsyncSession, new: NewEvent, now: datetime | None = None) -> WebhookEvent:
    """Add the event (and its delivery job) to the session."""
    event = WebhookEvent(
        user_id=new.account_id,
        livemode=new.livemode,
        analysis_id=new.subject_id,
        event_type=new.event_type,
        url=new.url,
        payload=new.payload,
        next_attempt_at=now or utcnow(),
    )
    session.add(event)
    queue.enqueue(session, WEBHOOK_JOB, {"event_id": str(event.id)}, max_attempts=JOB_MAX_ATTEMPTS)
    return event


async def end_pending(session: AsyncSession, which: ColumnElement[bool], reason: str) -> None:
    """Mark the undelivered events matching ``which`` failed with ``reason``; their jobs then do nothing."""
    await session.exec(
        update(WebhookEvent)
        .where(which, col(WebhookEvent.status) == "pending")
        .values(status="failed", last_error=reason[:1000], finished_at=utcnow(), next_attempt_at=None)
    )


async def supersede_pending(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """End the subject's undelivered events: its URL was replaced."""
    await end_pending(
        session, col(WebhookEvent.analysis_id) == subject_id, "Superseded: the webhook_url was replaced"
    )
