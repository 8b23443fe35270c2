from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field


class EmailMessage(SQLModel, table=True):
    """The email outbox: every message is stored here first, then delivered by the configured sender."""

    __tablename__ = "email_messages"

    id: uuid.UUID = id_field()
    to_address: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=255)
    body_text: str
    kind: str = Field(max_length=32)
    created_at: datetime = created_field()
    sent_at: datetime | None = optional_time_field()
    error: str | None = Field(default=None, max_length=1000)
