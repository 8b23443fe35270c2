"""Claim, complete and release idempotency keys. Each step is its own short transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import IdempotencySettings
from callcov.kit.time import utcnow
from callcov.models import IdempotencyKey


@dataclass(frozen=True)
class Proceed:
    record_id: uuid.UUID


@dataclass(frozen=True)
class Replay:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Mismatch:
    pass


@dataclass(frozen=True)
class InFlight:
    pass


Claim = Proceed | Replay | Mismatch | InFlight


@dataclass(frozen=True)
class Scope:
    user_id: uuid.UUID
    livemode: bool
    key: str


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: IdempotencySettings,
    scope: Scope,
    fingerprint: str,
) -> Claim:
    """Take the key for this request, or say why not. Safe under concurrent identical requests:
    the unique index on (account, mode, key) lets exactly one insert win."""
    for _ in range(3):
        async with sessionmaker() as session:
            outcome = await _claim_once(session, settings, scope, fingerprint)
            if outcome is not None:
                return outcome
    return InFlight()


async def _claim_once(
    session: AsyncSession, settings: IdempotencySettings, scope: Scope, fingerprint: str
) -> Claim | None:
    now = utcnow()
    row = (
        await session.exec(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == scope.user_id,
                IdempotencyKey.livemode == scope.livemode,
                IdempotencyKey.key == scope.key,
            )
        )
    ).first()
    if row is not None and row.expires_at <= now:
        await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.id) == row.id))
        await session.commit()
        return None
    if row is not None:
        return await _existing(session, settings, row, fingerprint)
    record = IdempotencyKey(
        user_id=scope.user_id,
        livemode=scope.livemode,
        key=scope.key,
        fingerprint=fingerprint,
        status="in_flight",
        locked_at=now,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.ttl_s),
    )
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None  # another request inserted it first: read it again
    return Proceed(record.id)


async def _existing(
    session: AsyncSession, settings: IdempotencySettings, row: IdempotencyKey, fingerprint: str
) -> Claim:
    if row.fingerprint != fingerprint:
        return Mismatch()
    if row.status == "done":
        headers = [(name, value) for name, value in orjson.loads(row.response_headers or "[]")]
        return Replay(status=row.response_status or 200, headers=headers, body=row.response_body or b"")
    now = utcnow()
    if row.locked_at > now - timedelta(seconds=settings.lock_timeout_s):
        return InFlight()
    # The request holding the key died without finishing: take the key over, once.
    taken = await session.exec(
        update(IdempotencyKey)
        .where(col(IdempotencyKey.id) == row.id, col(IdempotencyKey.locked_at) == row.locked_at)
        .where(col(IdempotencyKey.status) == "in_flight")
        .values(locked_at=now)
    )
    await session.commit()
    return Proceed(row.id) if taken.rowcount == 1 else InFlight()


async def complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    record_id: uuid.UUID,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    async with sessionmaker() as session:
        await session.exec(
            update(IdempotencyKey)
            .where(col(IdempotencyKey.id) == record_id)
            .values(
                status="done",
                response_status=status,
                response_headers=orjson.dumps(headers).decode(),
                response_body=body,
                completed_at=utcnow(),
            )
        )
        await session.commit()


async def release(sessionmaker: async_sessionmaker[AsyncSession], record_id: uuid.UUID) -> None:
    async with sessionmaker() as session:
        await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.id) == record_id))
        await session.commit()


async def prune_expired(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        result = await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) <= utcnow()))
        await session.commit()
        return int(result.rowcount or 0)
