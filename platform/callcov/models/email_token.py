from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class EmailToken(SQLModel, table=True):
    """A single-use token sent by email: ``verify`` (email verification) or ``reset`` (password reset)."""

    __tablename__ = "email_tokens"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    purpose: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = created_field()
    expires_at: datetime = created_field()
    used_at: datetime | None = optional_time_field()
    revoked_at: datetime | None = optional_time_field()
