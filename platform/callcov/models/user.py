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
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
