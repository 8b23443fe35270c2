"""Pointing a subject's webhook at a new URL, and reading a subject's delivery attempts."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import NetworkSettings
from callcov.kit.pagination import PageParams
from callcov.models import DisabledWebhookUrl, WebhookAttempt, WebhookEvent
from callcov.webhooks import events
from callcov.webhooks.sender import check_webhook_url


async def set_webhook_url(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    subject_id: uuid.UUID,
    url: str,
    network: NetworkSettings,
    event: events.NewEvent | None,
) -> WebhookEvent | None:
    """The subject's deliveries now go to ``url`` (checked like at submission). Setting a URL again
    re-enables it after a 410. Undelivered events of the subject end; ``event`` (the subject's current
    state for the new URL, if it has one to announce) is recorded."""
    await check_webhook_url(url, network)
    await session.exec(
        delete(DisabledWebhookUrl).where(
            col(DisabledWebhookUrl.user_id) == account_id, col(DisabledWebhookUrl.url) == url
        )
    )
    await events.supersede_pending(session, subject_id)
    return events.record(session, event) if event is not None else None


async def list_attempts(
    session: AsyncSession, subject_id: uuid.UUID, page: PageParams
) -> tuple[list[tuple[WebhookAttempt, WebhookEvent]], int]:
    total = (
        await session.exec(
            select(func.count())
            .select_from(WebhookAttempt)
            .where(col(WebhookAttempt.analysis_id) == subject_id)
        )
    ).one()
    rows = await session.exec(
        select(WebhookAttempt, WebhookEvent)
        .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookAttempt.event_id))
        .where(col(WebhookAttempt.analysis_id) == subject_id)
        .order_by(col(WebhookAttempt.created_at).desc(), col(WebhookAttempt.attempt).desc())
        .offset(page.skip)
        .limit(page.limit)
    )
    return [(attempt, event) for attempt, event in rows.all()], total
