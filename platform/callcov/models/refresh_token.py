from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class RefreshToken(SQLModel, table=True):
    """One row per issued refresh token (its ``jti``). Rotation marks ``used_at``; reuse revokes the family."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    family_id: uuid.UUID = Field(index=True)
    created_at: datetime = created_field()
    expires_at: datetime = created_field()
    used_at: datetime | None = optional_time_field()
    revoked_at: datetime | None = optional_time_field()
