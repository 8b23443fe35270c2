"""Email senders: the outbox (log only, the embedded default) and SMTP."""

from __future__ import annotations

import logging
from email.message import EmailMessage as MimeMessage
from typing import Protocol

import aiosmtplib

from callcov.config import EmailSettings
from callcov.models import EmailMessage

logger = logging.getLogger("callcov.emails")


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class OutboxSender:
    """Keeps the message in the outbox table and logs it, so a local user can follow the link."""

    async def send(self, message: EmailMessage) -> None:
        logger.info("Email to %s: %s\n%s", message.to_address, message.subject, message.body_text)


class SmtpSender:
    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
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
