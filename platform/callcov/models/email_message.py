from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field


class EmailMessage(SQLModel, table=True):
    """The email outbox: every message is stored here first, then delivered by the configured sender.
    Outside development a one-time code in ``body_text`` is stored redacted; ``callcov prune`` deletes
    rows older than ``CALLCOV_EMAIL__OUTBOX_RETENTION_S``."""

    __tablename__ = "email_messages"
    __table_args__ = (Index("ix_email_messages_created_at", "created_at"),)

    id: uuid.UUID = id_field()
    to_address: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=255)
    body_text: str
    kind: str = Field(max_length=32)
    created_at: datetime = created_field()
    sent_at: datetime | None = optional_time_field()
    error: str | None = Field(default=None, max_length=1000)
