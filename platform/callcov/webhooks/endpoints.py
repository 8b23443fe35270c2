"""/webhooks/secret (JWT only): the account's signing secret per mode, and its rotation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from callcov.auth.deps import JwtUser
from callcov.db import SessionDep
from callcov.errors import Forbidden, Unauthorized
from callcov.state import StateDep
from callcov.webhooks import secret_store
from callcov.webhooks.schemas import WebhookSecretPublic

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
