from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = id_field()
    email: str = Field(max_length=320, unique=True, index=True)
    phone_number: str | None = Field(default=None, max_length=16, unique=True)
    hashed_password: str = Field(max_length=255)
    is_active: bool = True
    is_verified: bool = False
    # Raised by a password change or reset and an email change: access tokens carry the version they
    # were issued under, and one of an older version is refused (refresh tokens are revoked in the DB).
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
