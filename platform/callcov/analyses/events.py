"""The analysis' outbound webhook event: its type and body at a terminal state, handed to the outbox
(``callcov.webhooks``) in the transaction that reached that state."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses.schemas import AnalysisPublic
from callcov.models import Analysis, WebhookEvent
from callcov.webhooks import events as outbox

EVENT_TYPES = {"completed": "analysis.completed", "failed": "analysis.failed"}


def event_body(analysis: Analysis) -> dict[str, Any]:
    """What GET /analysis/{id} returns, plus a top-level ``error_message`` for a failed analysis."""
    body = AnalysisPublic.of(analysis).model_dump(mode="json")
    if analysis.status == "failed":
        body["error_message"] = analysis.error_message
    return body


def new_event(analysis: Analysis) -> outbox.NewEvent | None:
    """The event of ``analysis``'s terminal state, if it has one and a URL to send it to."""
    event_type = EVENT_TYPES.get(analysis.status)
    if not analysis.webhook_url or event_type is None:
        return None
    return outbox.NewEvent(
        account_id=analysis.user_id,
        livemode=analysis.livemode,
        subject_id=analysis.id,
        url=analysis.webhook_url,
        event_type=event_type,
        payload=event_body(analysis),
    )


def record(session: AsyncSession, analysis: Analysis) -> WebhookEvent | None:
    """Add the event for ``analysis``'s terminal state (and its job) to the session, if it has a URL."""
    new = new_event(analysis)
    return outbox.record(session, new) if new is not None else None
