"""The one credential resolver: API key or JWT to a ``Principal`` (user, how, which mode)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.credentials import Credential
from callcov.auth.jwt import user_id_from_access_token
from callcov.config import AuthSettings
from callcov.errors import Unauthorized
from callcov.kit.time import utcnow
from callcov.kit.tokens import keyed_hash
from callcov.models import ApiKey, User


@dataclass(frozen=True)
class Principal:
    user: User
    via: Literal["jwt", "api_key"]
    livemode: bool
    api_key_id: uuid.UUID | None = None

    @property
    def account_id(self) -> uuid.UUID:
        return self.user.id


async def _active_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Could not validate credentials")
    return user


async def _usable_api_key(session: AsyncSession, settings: AuthSettings, raw_key: str) -> ApiKey:
    key = (
        await session.exec(
            select(ApiKey).where(ApiKey.key_hash == keyed_hash(raw_key, settings.api_key_pepper))
        )
    ).first()
    if key is None or not key.is_usable(utcnow()):
        raise Unauthorized("Invalid API key")
    return key


async def resolve_principal(
    session: AsyncSession, settings: AuthSettings, credential: Credential | None
) -> Principal:
    if credential is None:
        raise Unauthorized("Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    if credential.kind == "jwt":
        user_id = user_id_from_access_token(settings, credential.value)
        return Principal(user=await _active_user(session, user_id), via="jwt", livemode=True)
    key = await _usable_api_key(session, settings, credential.value)
    user = await _active_user(session, key.user_id)
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > timedelta(
        seconds=settings.last_used_resolution_s
    ):
        key.last_used_at = now
        session.add(key)
    return Principal(user=user, via="api_key", livemode=key.livemode, api_key_id=key.id)


async def resolve_scope(
    session: AsyncSession, settings: AuthSettings, credential: Credential | None
) -> tuple[uuid.UUID, bool] | None:
    """The (account, livemode) a credential acts as, or None when it is missing or invalid."""
    if credential is None:
        return None
    try:
        if credential.kind == "jwt":
            return user_id_from_access_token(settings, credential.value), True
        key = await _usable_api_key(session, settings, credential.value)
    except Unauthorized:
        return None
    return key.user_id, key.livemode
