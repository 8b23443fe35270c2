"""Queue an email in the outbox with the caller's transaction; deliver it once that commits."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import EmailSettings
from callcov.db import after_commit
from callcov.emails.sender import EmailSender
from callcov.kit.time import utcnow
from callcov.models import EmailMessage

logger = logging.getLogger("callcov.emails")


@dataclass(frozen=True)
class Outbox:
    """What sending an email needs: sessions for the delivery after commit, the sender, and the email
    settings (the front end's URL for links)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    sender: EmailSender
    settings: EmailSettings


def queue_email(
    session: AsyncSession, outbox: Outbox, *, to: str, subject: str, body: str, kind: str
) -> None:
    message = EmailMessage(to_address=to, subject=subject, body_text=body, kind=kind)
    session.add(message)

    async def deliver() -> None:
        await deliver_message(outbox.sessionmaker, outbox.sender, message.id)

    after_commit(session, deliver)


async def deliver_message(
    sessionmaker: async_sessionmaker[AsyncSession], sender: EmailSender, message_id: uuid.UUID
) -> None:
    async with sessionmaker() as session:
        message = await session.get(EmailMessage, message_id)
        if message is None or message.sent_at is not None:
            return
        try:
            await sender.send(message)
        except Exception as exc:  # the message stays in the outbox, unsent, with the reason
            logger.warning("email %s to %s not delivered: %s", message.id, message.to_address, exc)
            message.error = str(exc)[:1000]
        else:
            message.sent_at = utcnow()
            message.error = None
        session.add(message)
        await session.commit()


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
