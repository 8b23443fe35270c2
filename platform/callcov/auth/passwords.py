"""Password rules and argon2 hashing (pwdlib), with a dummy hash for constant-time misses."""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import Annotated

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import AfterValidator, Field, StringConstraints

PASSWORD_RULES = (
    "Password must be at least 8 characters and contain an uppercase letter, a lowercase letter, "
    "a digit and a special character"
)


def check_password_rules(value: str) -> str:
    if (
        len(value) < 8
        or not re.search(r"[A-Z]", value)
        or not re.search(r"[a-z]", value)
        or not re.search(r"\d", value)
        or not re.search(r"[^A-Za-z0-9\s]", value)
    ):
        raise ValueError(PASSWORD_RULES)
    return value


# The same rules for the OpenAPI document (pydantic's own regex engine has no lookaheads).
PASSWORD_PATTERN = r"^(?=[\s\S]*[A-Z])(?=[\s\S]*[a-z])(?=[\s\S]*\d)(?=[\s\S]*[^A-Za-z0-9\s])[\s\S]{8,}$"

Password = Annotated[
    str,
    StringConstraints(max_length=128),
    AfterValidator(check_password_rules),
    Field(json_schema_extra={"pattern": PASSWORD_PATTERN, "minLength": 8, "description": PASSWORD_RULES}),
]


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(),))


@lru_cache
def _dummy_hash() -> str:
    return _hasher().hash("dummy-password-for-timing-Aa1!")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Verify, returning ``(ok, new_hash_or_None)``. With no stored hash, burn the same time and fail."""
    if hashed is None:
        await asyncio.to_thread(_hasher().verify, password, _dummy_hash())
        return False, None
    return await asyncio.to_thread(_hasher().verify_and_update, password, hashed)
