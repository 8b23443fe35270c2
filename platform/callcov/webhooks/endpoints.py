"""/webhooks/secret (JWT only) and an analysis' webhook: set its URL, list its delivery attempts."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from callcov.analyses import repository
from callcov.analyses.endpoints import AnalysisNotFound
from callcov.analyses.schemas import AnalysisPublic
from callcov.analyses.service import wake_dispatcher
from callcov.auth.deps import AnyPrincipal, JwtUser
from callcov.db import SessionDep, after_commit
from callcov.errors import Forbidden, Unauthorized
from callcov.kit.pagination import Page, PageDep
from callcov.state import StateDep
from callcov.webhooks import secret_store, service
from callcov.webhooks.errors import InvalidWebhookUrl
from callcov.webhooks.schemas import SetWebhookRequest, WebhookDeliveryPublic, WebhookSecretPublic

Mode = Annotated[Literal["live", "test"], Query(description="Which mode's secret: live (default) or test.")]

secret_router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    responses={401: Unauthorized.schema(), 403: Forbidden.schema()},
)


@secret_router.get("/secret")
async def get_secret(
    user: JwtUser, session: SessionDep, state: StateDep, mode: Mode = "live"
) -> WebhookSecretPublic:
    """The signing secret of the account for one mode (created on first use)."""
    settings = state.settings.webhooks
    row = await secret_store.get_or_create(session, settings, user.id, mode == "live")
    return WebhookSecretPublic.of(row, settings)


@secret_router.post("/secret/rotate")
async def rotate_secret(
    user: JwtUser, session: SessionDep, state: StateDep, mode: Mode = "live"
) -> WebhookSecretPublic:
    """A new secret; the previous one keeps signing (both signatures are sent) for 24 hours."""
    settings = state.settings.webhooks
    row = await secret_store.rotate(session, settings, user.id, mode == "live")
    return WebhookSecretPublic.of(row, settings)


analysis_router = APIRouter(
    prefix="/analysis",
    tags=["analysis"],
    responses={401: Unauthorized.schema(), 404: AnalysisNotFound.schema()},
)


@analysis_router.post("/{analysis_id}/webhook", responses={400: InvalidWebhookUrl.schema()})
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
    if await service.set_webhook_url(session, state, analysis, data.webhook_url) is not None:
        after_commit(session, lambda: wake_dispatcher(state))
    return AnalysisPublic.of(analysis)


@analysis_router.get("/{analysis_id}/webhook/deliveries")
async def list_deliveries(
    analysis_id: uuid.UUID, principal: AnyPrincipal, session: SessionDep, page: PageDep
) -> Page[WebhookDeliveryPublic]:
    """Delivery attempts of the analysis' webhook events, newest first."""
    if await repository.get(session, principal, analysis_id) is None:
        raise AnalysisNotFound()
    rows, total = await service.list_attempts(session, analysis_id, page)
    return Page[WebhookDeliveryPublic].build(
        [WebhookDeliveryPublic.of(attempt, event) for attempt, event in rows], total, page
    )
