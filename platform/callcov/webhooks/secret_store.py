"""Per-account, per-mode signing secrets (``whsec_`` + base64 of 24 random bytes).

They are encrypted at rest (``callcov.kit.sealing``: Fernet under keys from
``CALLCOV_WEBHOOKS__ENCRYPTION_KEYS``): not hashed, because signing needs the secret itself. A secret
is created the first time it is needed (shown, or used to sign). A rotation keeps the previous
secret signing for ``rotation_overlap_s``; rotating again inside that window drops the oldest.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import WebhookSettings
from callcov.db import insert_ignoring_conflict
from callcov.kit.sealing import seal, unseal
from callcov.kit.time import utcnow
from callcov.models import WebhookSecret

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def encrypt(settings: WebhookSettings, secret: str) -> str:
    return seal(settings.encryption_keys, secret.encode()).decode("ascii")


def decrypt(settings: WebhookSettings, token: str) -> str:
    return unseal(settings.encryption_keys, token.encode()).decode()


async def _find(session: AsyncSession, user_id: uuid.UUID, livemode: bool) -> WebhookSecret | None:
    result = await session.exec(
        select(WebhookSecret).where(
            col(WebhookSecret.user_id) == user_id, col(WebhookSecret.livemode) == livemode
        )
    )
    return result.first()


async def get_or_create(
    session: AsyncSession, settings: WebhookSettings, user_id: uuid.UUID, livemode: bool
) -> WebhookSecret:
    """The scope's secret row, created when missing (race-safely: the unique constraint decides)."""
    row = await _find(session, user_id, livemode)
    if row is None:
        await insert_ignoring_conflict(
            session,
            WebhookSecret(
                user_id=user_id, livemode=livemode, secret_encrypted=encrypt(settings, new_secret())
            ),
        )
        row = await _find(session, user_id, livemode)
        assert row is not None
    return row


async def rotate(
    session: AsyncSession, settings: WebhookSettings, user_id: uuid.UUID, livemode: bool
) -> WebhookSecret:
    row = await get_or_create(session, settings, user_id, livemode)
    now = utcnow()
    row.previous_encrypted = row.secret_encrypted
    row.previous_expires_at = now + timedelta(seconds=settings.rotation_overlap_s)
    row.secret_encrypted = encrypt(settings, new_secret())
    row.rotated_at = now
    session.add(row)
    await session.flush()
    return row


def current(settings: WebhookSettings, row: WebhookSecret) -> str:
    return decrypt(settings, row.secret_encrypted)


def previous(settings: WebhookSettings, row: WebhookSecret) -> str | None:
    """The rotated-out secret while it still signs, else None."""
    if row.previous_encrypted is None or row.previous_expires_at is None:
        return None
    if row.previous_expires_at <= utcnow():
        return None
    return decrypt(settings, row.previous_encrypted)


def signing_secrets(settings: WebhookSettings, row: WebhookSecret) -> list[str]:
    secrets_ = [current(settings, row)]
    old = previous(settings, row)
    if old is not None:
        secrets_.append(old)
    return secrets_
