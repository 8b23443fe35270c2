"""The outbox: an event row (and its delivery job) written in the caller's transaction, so an
analysis that finished with a webhook URL always has its event, and one that did not never has."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses.schemas import AnalysisPublic
from callcov.kit.time import utcnow
from callcov.models import Analysis, WebhookEvent
from callcov.worker import queue

WEBHOOK_JOB = "webhook"
EVENT_TYPES = {"completed": "analysis.completed", "failed": "analysis.failed"}
# Each retry claims the job again; generous so only a handler that keeps crashing gives up.
JOB_MAX_ATTEMPTS = 50


def event_body(analysis: Analysis) -> dict[str, Any]:
    """What GET /analysis/{id} returns, plus a top-level ``error_message`` for a failed analysis."""
    body = AnalysisPublic.of(analysis).model_dump(mode="json")
    if analysis.status == "failed":
        body["error_message"] = analysis.error_message
    return body


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def message_id(event_id: uuid.UUID) -> str:
    """The ``webhook-id`` header: one per event, the same on every retry."""
    return f"msg_{event_id.hex}"


def record(session: AsyncSession, analysis: Analysis, now: datetime | None = None) -> WebhookEvent | None:
    """Add the event for ``analysis``'s terminal state (and its job) to the session, if it has a URL."""
    event_type = EVENT_TYPES.get(analysis.status)
    if not analysis.webhook_url or event_type is None:
        return None
    event = WebhookEvent(
        user_id=analysis.user_id,
        livemode=analysis.livemode,
        analysis_id=analysis.id,
        event_type=event_type,
        url=analysis.webhook_url,
        payload=event_body(analysis),
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


async def supersede_pending(session: AsyncSession, analysis_id: uuid.UUID) -> None:
    """End the analysis' undelivered events: its URL was replaced."""
    await end_pending(
        session, col(WebhookEvent.analysis_id) == analysis_id, "Superseded: the webhook_url was replaced"
    )
