"""Which credential a request carries, read from its headers only (no database).

A request carries at most one credential: ``X-API-Key: sk_…``, or ``Authorization: Bearer <value>``
(an ``sk_…`` value is an API key, any other a JWT), or the same API key in both. Anything else that
looks like an attempt to authenticate (an empty ``X-API-Key``, another ``Authorization`` scheme, two
different credentials, a repeated header) is an ``invalid`` credential: the request is refused
with 401 rather than served with whichever credential happens to be valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers


@dataclass(frozen=True)
class Credential:
    kind: Literal["api_key", "jwt", "invalid"]
    value: str  # for ``invalid``: why


def _invalid(reason: str) -> Credential:
    return Credential("invalid", reason)


def _bearer(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def read_credential(headers: Headers) -> Credential | None:
    api_keys, authorizations = headers.getlist("x-api-key"), headers.getlist("authorization")
    if len(api_keys) > 1 or len(authorizations) > 1:
        return _invalid("Send one credential: X-API-Key or Authorization, each at most once")
    api_key = api_keys[0].strip() if api_keys else None
    if api_key == "":
        return _invalid("Empty X-API-Key header")
    bearer = None
    if authorizations:
        bearer = _bearer(authorizations[0])
        if bearer is None:
            return _invalid("The Authorization header must be 'Bearer <token>'")
    if api_key is not None and bearer is not None and bearer != api_key:
        return _invalid("Send one credential: X-API-Key or Authorization, not both")
    if api_key is not None:
        return Credential("api_key", api_key)
    if bearer is not None:
        return Credential("api_key" if bearer.startswith("sk_") else "jwt", bearer)
    return None
