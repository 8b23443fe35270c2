"""API keys: created with a JWT, shown once, stored as keyed hashes, revoked for good."""

from __future__ import annotations

import uuid

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.api_keys.errors import ApiKeyNotFound, TooManyApiKeys
from callcov.api_keys.schemas import ApiKeyCreate
from callcov.config import AuthSettings
from callcov.kit.pagination import PageParams
from callcov.kit.time import utcnow
from callcov.kit.tokens import KEY_PREFIX_LENGTH, generate_api_key, keyed_hash
from callcov.models import ApiKey, User


def _active_clause():  # type: ignore[no-untyped-def]
    now = utcnow()
    return col(ApiKey.revoked_at).is_(None), or_(
        col(ApiKey.expires_at).is_(None), col(ApiKey.expires_at) > now
    )


async def create_api_key(
    session: AsyncSession, settings: AuthSettings, user: User, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    # Lock the user row so concurrent creations cannot pass the limit together (no-op on SQLite,
    # where writers are serialised anyway).
    await session.exec(select(User).where(User.id == user.id).with_for_update())
    active = (
        await session.exec(
            select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user.id, *_active_clause())
        )
    ).one()
    if active >= settings.max_active_api_keys:
        raise TooManyApiKeys(
            f"At most {settings.max_active_api_keys} active API keys per account: revoke one first"
        )
    raw = generate_api_key(data.mode)
    key = ApiKey(
        user_id=user.id,
        key_hash=keyed_hash(raw, settings.api_key_pepper),
        key_prefix=raw[:KEY_PREFIX_LENGTH],
        name=data.name,
        description=data.description if data.description is not None else data.name,
        livemode=data.mode == "live",
    )
    session.add(key)
    await session.flush()
    return key, raw


async def list_api_keys(
    session: AsyncSession, user: User, *, include_expired: bool, page: PageParams
) -> tuple[list[tuple[ApiKey, bool]], int]:
    query = select(ApiKey).where(ApiKey.user_id == user.id)
    if not include_expired:
        query = query.where(*_active_clause())
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(ApiKey.created_at).desc(), col(ApiKey.id)).offset(page.skip).limit(page.limit)
    )
    now = utcnow()
    return [(key, key.is_usable(now)) for key in rows.all()], total


async def revoke_api_key(session: AsyncSession, user: User, key_id: uuid.UUID) -> None:
    key = await session.get(ApiKey, key_id)
    if key is None or key.user_id != user.id:
        raise ApiKeyNotFound()
    if key.revoked_at is None:
        key.revoked_at = key.updated_at = utcnow()
        session.add(key)


async def revoke_all_api_keys(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Every key of the user, both modes, revoked for good (deactivation, password reset)."""
    now = utcnow()
    await session.exec(
        update(ApiKey)
        .where(col(ApiKey.user_id) == user_id, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=now, updated_at=now)
    )
