from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    # HMAC-SHA256 of the full key with the server's pepper; the key itself is never stored.
    key_hash: str = Field(max_length=64, unique=True, index=True)
    key_prefix: str = Field(max_length=14)
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=500)
    livemode: bool = True
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
    last_used_at: datetime | None = optional_time_field()
    expires_at: datetime | None = optional_time_field()
    revoked_at: datetime | None = optional_time_field()

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
