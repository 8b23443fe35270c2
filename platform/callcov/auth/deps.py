"""Route gates: ``AnyPrincipal`` (API key or JWT) and ``JwtUser`` (user sessions only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from callcov.auth.credentials import read_credential
from callcov.auth.principal import Principal, resolve_principal
from callcov.db import SessionDep
from callcov.errors import Forbidden
from callcov.models import User
from callcov.state import get_state

# Declared so the OpenAPI document lists both ways to authenticate; parsing is done by read_credential.
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="sk_live_… or sk_test_…")
_bearer = HTTPBearer(auto_error=False, description="A JWT access token, or an API key (sk_…)")


async def get_principal(
    request: Request,
    session: SessionDep,
    _key: Annotated[str | None, Depends(_api_key_header)],
    _bearer_value: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    settings = get_state(request).settings.auth
    return await resolve_principal(session, settings, read_credential(request.headers))


AnyPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_jwt_user(principal: AnyPrincipal) -> User:
    if principal.via != "jwt":
        raise Forbidden("This endpoint requires a user access token (JWT); API keys are not accepted")
    return principal.user


JwtUser = Annotated[User, Depends(get_jwt_user)]
