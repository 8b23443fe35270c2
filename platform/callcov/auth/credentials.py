"""Which credential a request carries, read from its headers only (no database)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers


@dataclass(frozen=True)
class Credential:
    kind: Literal["api_key", "jwt"]
    value: str


def read_credential(headers: Headers) -> Credential | None:
    """``X-API-Key: sk_…`` or ``Authorization: Bearer sk_…`` is an API key; any other Bearer value a JWT."""
    api_key = headers.get("x-api-key", "").strip()
    if api_key:
        return Credential("api_key", api_key)
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return Credential("api_key" if value.startswith("sk_") else "jwt", value)
