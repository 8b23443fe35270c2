"""The one credential resolver: API key or JWT to a ``Resolution`` (the ``Principal``, or the error to
raise where a route requires one), in one query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import AuthSettings
from callcov.errors import Unauthorized
from callcov.kit.time import utcnow
from callcov.kit.tokens import api_key_checksum_ok, keyed_hash
from callcov.models import ApiKey, Subscription, User


@dataclass(frozen=True)
class Principal:
    user: User
    via: Literal["jwt", "api_key"]
    livemode: bool
    api_key_id: uuid.UUID | None = None

    @property
    def account_id(self) -> uuid.UUID:
        return self.user.id


@dataclass(frozen=True)
class Resolution:
    """What a request's credential resolved to. ``account`` is the (account, livemode) a valid
    credential acts as, even when its user may not sign in (idempotency keys and plans are scoped by
    it); ``tier`` is that account's plan ("free" before its first billing use), when asked for."""

    principal: Principal | None = None
    error: Unauthorized | None = None
    account: tuple[uuid.UUID, bool] | None = None
    tier: str | None = None


def not_authenticated() -> Resolution:
    return Resolution(error=Unauthorized("Not authenticated", headers={"WWW-Authenticate": "Bearer"}))


def _tier(row: Any, with_tier: bool) -> str | None:
    if not with_tier:
        return None
    return (row[-1] if row is not None else None) or "free"


async def resolve_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    with_tier: bool,
    token_version: int = 0,
    livemode: bool = True,
) -> Resolution:
    """The user of a verified access token (one SELECT, joined to the plan when ``with_tier``), acting
    in live mode unless ``livemode`` is False (the ``CallCov-Mode: test`` header). A token issued
    before the user's last password or email change (an older version) is refused."""
    if with_tier:
        query = select(User, col(Subscription.tier)).outerjoin(
            Subscription, col(Subscription.user_id) == col(User.id)
        )
        row: Any = (await session.exec(query.where(col(User.id) == user_id))).first()
        user = row[0] if row is not None else None
    else:
        row = user = await session.get(User, user_id)
    account, tier = (user_id, livemode), _tier(row, with_tier)
    if user is None or not user.is_active or user.token_version != token_version:
        return Resolution(error=Unauthorized("Could not validate credentials"), account=account, tier=tier)
    return Resolution(Principal(user=user, via="jwt", livemode=livemode), account=account, tier=tier)


async def resolve_api_key(
    session: AsyncSession, settings: AuthSettings, raw_key: str, *, with_tier: bool
) -> Resolution:
    """An API key and its user in one SELECT (joined to the plan when ``with_tier``). Stamps
    ``last_used_at`` (for the caller to commit) at most once per ``last_used_resolution_s``. A
    string that is not a well-formed key (its checksum) is refused without a query."""
    if not api_key_checksum_ok(raw_key):
        return Resolution(error=Unauthorized("Invalid API key"))
    key_hash = keyed_hash(raw_key, settings.api_key_pepper)
    query: Any = select(ApiKey, User)
    if with_tier:
        query = select(ApiKey, User, col(Subscription.tier)).outerjoin(
            Subscription, col(Subscription.user_id) == col(ApiKey.user_id)
        )
    query = query.outerjoin(User, col(User.id) == col(ApiKey.user_id))
    row = (await session.exec(query.where(col(ApiKey.key_hash) == key_hash))).first()
    now = utcnow()
    if row is None or not row[0].is_usable(now):
        return Resolution(error=Unauthorized("Invalid API key"))
    key, user = row[0], row[1]
    account, tier = (key.user_id, key.livemode), _tier(row, with_tier)
    if user is None or not user.is_active:
        return Resolution(error=Unauthorized("Could not validate credentials"), account=account, tier=tier)
    if key.last_used_at is None or now - key.last_used_at > timedelta(
        seconds=settings.last_used_resolution_s
    ):
        key.last_used_at = now
        session.add(key)
    principal = Principal(user=user, via="api_key", livemode=key.livemode, api_key_id=key.id)
    return Resolution(principal, account=account, tier=tier)
