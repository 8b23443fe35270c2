"""Route gates: ``AnyPrincipal`` (API key or JWT) and ``JwtUser`` (user sessions only)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from callcov.auth.middleware import caller_of
from callcov.auth.principal import Principal
from callcov.db import SessionDep
from callcov.errors import Forbidden
from callcov.models import User

# Declared so the OpenAPI document lists both ways to authenticate; the credential is read and
# resolved by AuthenticationMiddleware (callcov.auth.middleware), once per request.
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="sk_live_… or sk_test_…")
_bearer = HTTPBearer(auto_error=False, description="A JWT access token, or an API key (sk_…)")


async def get_principal(
    request: Request,
    session: SessionDep,
    _key: Annotated[str | None, Depends(_api_key_header)],
    _bearer_value: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The request's principal (or its resolution's 401), with the user bound to the request's
    session (merged without a query), so routes may change and flush it."""
    principal = await caller_of(request.scope).principal()
    return replace(principal, user=await session.merge(principal.user, load=False))


AnyPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_jwt_user(principal: AnyPrincipal) -> User:
    if principal.via != "jwt":
        raise Forbidden("This endpoint requires a user access token (JWT); API keys are not accepted")
    return principal.user


JwtUser = Annotated[User, Depends(get_jwt_user)]
