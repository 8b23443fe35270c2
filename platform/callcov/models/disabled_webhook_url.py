from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, user_fk


class DisabledWebhookUrl(SQLModel, table=True):
    """A URL that answered 410 Gone: nothing more is sent there for this account until the client
    sets it again on an analysis (POST /analysis/{id}/webhook)."""

    __tablename__ = "disabled_webhook_urls"
    __table_args__ = (UniqueConstraint("user_id", "url", name="uq_disabled_webhook_urls"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    url: str = Field(max_length=2048)
    reason: str = Field(max_length=200)
    created_at: datetime = created_field()
