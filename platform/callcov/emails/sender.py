"""Email senders: the outbox (log only, the embedded default) and SMTP.

A sender is handed an ``OutgoingEmail``. SMTP puts it in the recipient's mailbox, so it gets the
message as written, one-time code included. The log sender writes it to the service's log, so it
gets what the outbox may keep: the clear body on a laptop (development, testing), the body with the
code redacted elsewhere (``callcov.emails.service``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from typing import Protocol

import aiosmtplib

from callcov.config import EmailSettings

logger = logging.getLogger("callcov.emails")


@dataclass(frozen=True)
class OutgoingEmail:
    id: uuid.UUID
    to_address: str
    subject: str
    body_text: str


class EmailSender(Protocol):
    # True when the message goes to the recipient only (a mailbox), not to a log or a table.
    private: bool

    async def send(self, message: OutgoingEmail) -> None: ...


class OutboxSender:
    """Keeps the message in the outbox table and logs it, so a local user can follow the link."""

    private = False

    async def send(self, message: OutgoingEmail) -> None:
        logger.info("Email to %s: %s\n%s", message.to_address, message.subject, message.body_text)


class SmtpSender:
    private = True

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    async def send(self, message: OutgoingEmail) -> None:
        mime = MimeMessage()
        mime["From"] = self.settings.from_address
        mime["To"] = message.to_address
        mime["Subject"] = message.subject
        mime.set_content(message.body_text)
        await aiosmtplib.send(
            mime,
            hostname=self.settings.smtp_host,
            port=self.settings.smtp_port,
            username=self.settings.smtp_username or None,
            password=self.settings.smtp_password or None,
            start_tls=self.settings.smtp_starttls,
            use_tls=self.settings.smtp_tls,
            timeout=self.settings.smtp_timeout_s,
        )
        logger.info("Email to %s sent through SMTP: %s", message.to_address, message.subject)


def build_sender(settings: EmailSettings) -> EmailSender:
    return SmtpSender(settings) if settings.backend == "smtp" else OutboxSender()
