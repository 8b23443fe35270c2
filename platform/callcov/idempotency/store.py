"""Claim, complete and release idempotency keys. Each step is its own short transaction.

A key belongs to the account and mode; its response is replayed only to the credential that made
the first request, and is stored sealed under the encryption keys (it may carry a secret)."""

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
from callcov.kit.sealing import Unreadable as _Unreadable
from callcov.kit.sealing import seal, unseal
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
    """Another request (other parameters, or another credential) used the key first."""

    other_credential: bool = False


@dataclass(frozen=True)
class Unreadable:
    """The first request finished, but its stored response cannot be decrypted any more."""


@dataclass(frozen=True)
class InFlight:
    pass


Claim = Proceed | Replay | Mismatch | InFlight | Unreadable


@dataclass(frozen=True)
class Scope:
    user_id: uuid.UUID
    livemode: bool
    key: str
    # Who may see the response: "api_key:<id>" or "jwt:<user id>".
    credential: str
    # Seal and unseal the stored body (CALLCOV_WEBHOOKS__ENCRYPTION_KEYS).
    keys: tuple[str, ...]


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
        return await _existing(session, settings, scope, row, fingerprint)
    record = IdempotencyKey(
        user_id=scope.user_id,
        livemode=scope.livemode,
        key=scope.key,
        credential=scope.credential,
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
    session: AsyncSession,
    settings: IdempotencySettings,
    scope: Scope,
    row: IdempotencyKey,
    fingerprint: str,
) -> Claim:
    if row.credential != scope.credential:
        return Mismatch(other_credential=True)
    if row.fingerprint != fingerprint:
        return Mismatch()
    if row.status == "done":
        headers = [(name, value) for name, value in orjson.loads(row.response_headers or "[]")]
        try:
            body = unseal(scope.keys, row.response_body) if row.response_body else b""
        except _Unreadable:
            return Unreadable()
        return Replay(status=row.response_status or 200, headers=headers, body=body)
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
    scope: Scope,
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
                response_body=seal(scope.keys, body),
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
