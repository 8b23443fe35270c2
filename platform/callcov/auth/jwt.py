"""Access and refresh JWTs (HS256). Refresh tokens carry a ``jti`` and ``fam`` tracked in the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from callcov.config import AuthSettings
from callcov.errors import Unauthorized
from callcov.kit.time import utcnow


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    # The user's ``token_version`` when the token was issued (0 for tokens issued before versions).
    version: int


@dataclass(frozen=True)
class RefreshClaims:
    user_id: uuid.UUID
    jti: uuid.UUID
    family_id: uuid.UUID


def issue_token(settings: AuthSettings, user_id: uuid.UUID, kind: str, ttl_s: int, **extra: str | int) -> str:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "typ": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": extra.pop("jti", None) or uuid.uuid4().hex,
        **extra,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)


def _decode(settings: AuthSettings, token: str, kind: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[settings.jwt_algorithm],
            options={"require": ["exp", "sub", "typ", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("Could not validate credentials") from exc
    if claims.get("typ") != kind:
        raise Unauthorized("Could not validate credentials")
    return claims


def access_claims(settings: AuthSettings, token: str) -> AccessClaims:
    claims = _decode(settings, token, "access")
    version = claims.get("ver", 0)
    try:
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(version)
        return AccessClaims(uuid.UUID(claims["sub"]), version)
    except ValueError as exc:
        raise Unauthorized("Could not validate credentials") from exc


def decode_refresh_token(settings: AuthSettings, token: str) -> RefreshClaims:
    claims = _decode(settings, token, "refresh")
    try:
        return RefreshClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["jti"]), uuid.UUID(claims["fam"]))
    except (KeyError, ValueError) as exc:
        raise Unauthorized("Invalid refresh token") from exc
