"""An analysis' webhook: set its URL, list its delivery attempts (delivery itself: ``callcov.webhooks``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from callcov.analyses import repository, service
from callcov.analyses.errors import AnalysisNotFound
from callcov.analyses.schemas import AnalysisPublic
from callcov.auth.deps import AnyPrincipal
from callcov.db import SessionDep
from callcov.errors import Unauthorized
from callcov.kit.pagination import Page, PageDep
from callcov.state import StateDep
from callcov.webhooks import service as webhooks
from callcov.webhooks.errors import InvalidWebhookUrl
from callcov.webhooks.schemas import SetWebhookRequest, WebhookDeliveryPublic

router = APIRouter(
    prefix="/analysis",
    tags=["analysis"],
    responses={401: Unauthorized.schema(), 404: AnalysisNotFound.schema()},
)


@router.post("/{analysis_id}/webhook", responses={400: InvalidWebhookUrl.schema()})
async def set_webhook(
    analysis_id: uuid.UUID,
    data: SetWebhookRequest,
    principal: AnyPrincipal,
    session: SessionDep,
    state: StateDep,
) -> AnalysisPublic:
    """Set or replace the analysis' webhook URL. If the analysis has already finished, its event is
    delivered to the new URL now; undelivered events to the previous URL are dropped."""
    analysis = await repository.get(session, principal, analysis_id)
    if analysis is None:
        raise AnalysisNotFound()
    await service.set_webhook_url(
        session, analysis, data.webhook_url, network=state.settings.network, waker=state.waker
    )
    return AnalysisPublic.of(analysis)


@router.get("/{analysis_id}/webhook/deliveries")
async def list_deliveries(
    analysis_id: uuid.UUID, principal: AnyPrincipal, session: SessionDep, page: PageDep
) -> Page[WebhookDeliveryPublic]:
    """Delivery attempts of the analysis' webhook events, newest first."""
    if await repository.get(session, principal, analysis_id) is None:
        raise AnalysisNotFound()
    rows, total = await webhooks.list_attempts(session, analysis_id, page)
    return Page[WebhookDeliveryPublic].build(
        [WebhookDeliveryPublic.of(attempt, event) for attempt, event in rows], total, page
    )
