from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from callcov.kit.text import SafeStr
from callcov.kit.time import to_unix
from callcov.models import ApiKey


class ApiKeyCreate(BaseModel):
    description: SafeStr | None = Field(default=None, max_length=500)
    name: SafeStr | None = Field(
        default=None, max_length=255, description="Alias of description in some guides."
    )
    mode: Literal["live", "test"] = "live"


class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    object: Literal["api_key"] = "api_key"
    key_prefix: str
    name: str | None
    description: str | None
    livemode: bool
    is_active: bool
    last_used_at: int | None
    expires_at: int | None
    created: int
    updated: int

    @classmethod
    def of(cls, key: ApiKey, *, active: bool) -> ApiKeyPublic:
        return cls(
            id=key.id,
            key_prefix=key.key_prefix,
            name=key.name,
            description=key.description,
            livemode=key.livemode,
            is_active=active,
            last_used_at=to_unix(key.last_used_at),
            expires_at=to_unix(key.expires_at),
            created=to_unix(key.created_at) or 0,
            updated=to_unix(key.updated_at) or 0,
        )


class ApiKeyCreated(ApiKeyPublic):
    api_key: str = Field(description="The full secret key. Shown once: store it now.")


class ApiKeyList(BaseModel):
    object: Literal["list"] = "list"
    api_keys: list[ApiKeyPublic]
    total: int
    skip: int
    limit: int
    has_more: bool
