"""Setting an analysis' webhook URL, and reading its delivery attempts."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.kit.pagination import PageParams
from callcov.models import Analysis, DisabledWebhookUrl, WebhookAttempt, WebhookEvent
from callcov.state import AppState
from callcov.webhooks import events
from callcov.webhooks.sender import check_webhook_url


async def set_webhook_url(
    session: AsyncSession, state: AppState, analysis: Analysis, url: str
) -> WebhookEvent | None:
    """Replace the URL (checked like at submission). Setting a URL again re-enables it after a 410.
    Undelivered events of the analysis end; a finished analysis gets a new event for the new URL."""
    network = state.settings.network
    await check_webhook_url(url, allow=network.url_allow, timeout_s=network.dns_timeout_s)
    await session.exec(
        delete(DisabledWebhookUrl).where(
            col(DisabledWebhookUrl.user_id) == analysis.user_id, col(DisabledWebhookUrl.url) == url
        )
    )
    await events.supersede_pending(session, analysis.id)
    analysis.webhook_url = url
    session.add(analysis)
    await session.flush()
    return events.record(session, analysis)


async def list_attempts(
    session: AsyncSession, analysis_id: uuid.UUID, page: PageParams
) -> tuple[list[tuple[WebhookAttempt, WebhookEvent]], int]:
    total = (
        await session.exec(
            select(func.count())
            .select_from(WebhookAttempt)
            .where(col(WebhookAttempt.analysis_id) == analysis_id)
        )
    ).one()
    rows = await session.exec(
        select(WebhookAttempt, WebhookEvent)
        .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookAttempt.event_id))
        .where(col(WebhookAttempt.analysis_id) == analysis_id)
        .order_by(col(WebhookAttempt.created_at).desc(), col(WebhookAttempt.attempt).desc())
        .offset(page.skip)
        .limit(page.limit)
    )
    return [(attempt, event) for attempt, event in rows.all()], total
