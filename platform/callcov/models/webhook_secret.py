from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class WebhookSecret(SQLModel, table=True):
    """An account's signing secret for one mode, encrypted at rest (it must be read back to sign).
    After a rotation the previous secret keeps signing until ``previous_expires_at``."""

    __tablename__ = "webhook_secrets"
    __table_args__ = (UniqueConstraint("user_id", "livemode", name="uq_webhook_secrets_scope"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    livemode: bool
    secret_encrypted: str = Field(max_length=512)
    previous_encrypted: str | None = Field(default=None, max_length=512)
    previous_expires_at: datetime | None = optional_time_field()
    created_at: datetime = created_field()
    rotated_at: datetime | None = optional_time_field()
