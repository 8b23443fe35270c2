from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from callcov.auth.passwords import Password
from callcov.auth.schemas import PhoneNumber
from callcov.kit.time import to_unix
from callcov.models import User


class UserPublic(BaseModel):
    id: uuid.UUID
    object: Literal["user"] = "user"
    email: str
    phone_number: str | None
    is_active: bool
    is_verified: bool
    created: int
    updated: int

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(
            id=user.id,
            email=user.email,
            phone_number=user.phone_number,
            is_active=user.is_active,
            is_verified=user.is_verified,
            created=to_unix(user.created_at) or 0,
            updated=to_unix(user.updated_at) or 0,
        )


class UserUpdate(BaseModel):
    # The schema states the refusals that depend on the request alone: an update that changes nothing
    # (400 "No fields to update", CONTRACT.md: one of the three fields, not null), and a new email or
    # password without the current password (400 current_password_required).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("email", "phone_number", "password")
            ],
            "dependentRequired": {"email": ["current_password"], "password": ["current_password"]},
        }
    )

    email: EmailStr | None = None
    phone_number: PhoneNumber | None = None
    password: Password | None = None
    current_password: str | None = Field(
        default=None,
        max_length=128,
        description="The account's password; required to change the email or the password.",
    )
