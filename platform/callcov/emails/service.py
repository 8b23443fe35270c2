"""Queue an email in the outbox with the caller's transaction; deliver it once that commits.

Emails that carry a one-time code (verification, password reset) are kept in the outbox, and logged
by the log sender, with the code in the clear only on a laptop (``Environment.is_local``). Elsewhere
the outbox keeps the body with the code replaced by ``[redacted]``, and only the commit's callback
holds the clear body, in memory, to hand it to a private sender (SMTP). Outbox rows are deleted by
``callcov prune`` after ``CALLCOV_EMAIL__OUTBOX_RETENTION_S``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import EmailSettings
from callcov.db import after_commit
from callcov.emails.sender import EmailSender, OutgoingEmail
from callcov.kit.time import utcnow
from callcov.models import EmailMessage

logger = logging.getLogger("callcov.emails")

REDACTED = "[redacted]"


@dataclass(frozen=True)
class Outbox:
    """What sending an email needs: sessions for the delivery after commit, the sender, the email
    settings (the front end's URL for links), and whether codes may be kept and logged in the clear."""

    sessionmaker: async_sessionmaker[AsyncSession]
    sender: EmailSender
    settings: EmailSettings
    reveal_codes: bool = False


def queue_email(
    session: AsyncSession,
    outbox: Outbox,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    code: str | None = None,
) -> None:
    """Store the message and deliver it after commit. ``code``: the one-time code in ``body``."""
    kept = body if outbox.reveal_codes or not code else body.replace(code, REDACTED)
    message = EmailMessage(to_address=to, subject=subject, body_text=kept, kind=kind)
    session.add(message)
    shown = body if outbox.sender.private else kept

    async def deliver() -> None:
        await deliver_message(outbox.sessionmaker, outbox.sender, message.id, shown)

    after_commit(session, deliver)


async def deliver_message(
    sessionmaker: async_sessionmaker[AsyncSession], sender: EmailSender, message_id: uuid.UUID, body: str
) -> None:
    async with sessionmaker() as session:
        message = await session.get(EmailMessage, message_id)
        if message is None or message.sent_at is not None:
            return
        try:
            await sender.send(OutgoingEmail(message.id, message.to_address, message.subject, body))
        except Exception as exc:  # the message stays in the outbox, unsent, with the reason
            logger.warning("email %s to %s not delivered: %s", message.id, message.to_address, exc)
            message.error = str(exc)[:1000]
        else:
            message.sent_at = utcnow()
            message.error = None
        session.add(message)
        await session.commit()


async def prune_outbox(sessionmaker: async_sessionmaker[AsyncSession], settings: EmailSettings) -> int:
    """Delete outbox messages older than the retention, sent or not."""
    cutoff = utcnow() - timedelta(seconds=settings.outbox_retention_s)
    async with sessionmaker() as session:
        result = await session.exec(delete(EmailMessage).where(col(EmailMessage.created_at) < cutoff))
        await session.commit()
        return int(result.rowcount or 0)


def verification_email(frontend_url: str, token: str, ttl_s: int) -> tuple[str, str]:
    link = f"{frontend_url.rstrip('/')}/verify-email?token={token}"
    return "Verify your CallCov email address", (
        f"Welcome to CallCov.\n\nConfirm your email address: {link}\n\n"
        f"The link is valid for {ttl_s // 60} minutes. Without a front end, send the code to the API:\n"
        f'POST /api/v1/auth/verify-email {{"code": "{token}"}}\n'
    )


def password_reset_email(frontend_url: str, token: str, ttl_s: int) -> tuple[str, str]:
    link = f"{frontend_url.rstrip('/')}/reset-password-confirmation?token={token}"
    return "Reset your CallCov password", (
        f"Someone asked to reset the password of this CallCov account.\n\nReset it: {link}\n\n"
        f"The link is valid for {ttl_s // 60} minutes and works once. Without a front end:\n"
        f'POST /api/v1/auth/password-reset/confirm {{"token": "{token}", "new_password": "..."}}\n'
        "If you did not ask for this, ignore this message.\n"
    )
