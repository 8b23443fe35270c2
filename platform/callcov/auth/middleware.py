"""The caller, read once at the edge: ``AuthenticationMiddleware`` keeps a ``Caller`` on every HTTP
request (``scope["state"]``) for the rate limiter, the idempotency layer and the route dependencies.

The credential is read from the headers and a JWT is verified here, once. The database lookup (one
query: the API key joined to its user, or the JWT's user, plus the plan when per-plan rate limits are
configured) runs at most once per request, in its own autocommit session (one round trip, no
transaction), when a layer first needs it: the rate limiter, for a request that carries a
credential (an API key before it is counted, a JWT after); a request without one never pays for it.
A request whose credential fails is refused at the edge (``Caller.refusal``, used by the rate
limiter), public routes included.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from callcov.auth.credentials import Credential, read_credential
from callcov.auth.jwt import access_claims
from callcov.auth.principal import (
    Principal,
    Resolution,
    not_authenticated,
    resolve_api_key,
    resolve_user,
)
from callcov.config import AuthSettings
from callcov.errors import Unauthorized
from callcov.state import state_of_app

CALLER_KEY = "callcov.caller"
MODE_HEADER = "callcov-mode"
MODE_ERROR = "CallCov-Mode must be 'live' or 'test'"


class Caller:
    """One request's credential: ``user_id`` is the verified JWT's user (None for an API key, no
    credential, or a JWT that failed verification). ``resolution()`` looks it up, once."""

    def __init__(
        self,
        credential: Credential | None,
        auth: AuthSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        with_tier: bool,
        mode: str | None = None,
    ) -> None:
        self.credential = credential
        # A JWT acts in live mode, or in test mode with ``CallCov-Mode: test`` (an API key's mode is
        # the key's own; the header is ignored for keys).
        self._livemode = mode in (None, "live")
        self._mode_error = None if mode in (None, "live", "test") else Unauthorized(MODE_ERROR)
        self._auth = auth
        self._sessionmaker = sessionmaker
        self._with_tier = with_tier
        self._resolution: Resolution | None = None
        self.user_id: uuid.UUID | None = None
        self._token_version = 0
        self._jwt_error: Unauthorized | None = None
        if credential is not None and credential.kind == "jwt":
            try:
                claims = access_claims(auth, credential.value)
                self.user_id, self._token_version = claims.user_id, claims.version
            except Unauthorized as exc:
                self._jwt_error = exc

    async def resolution(self) -> Resolution:
        if self._resolution is None:
            self._resolution = await self._resolve()
        return self._resolution

    async def principal(self) -> Principal:
        """The principal, or the resolution's ``Unauthorized``."""
        resolution = await self.resolution()
        if resolution.principal is None:
            raise resolution.error or Unauthorized("Could not validate credentials")
        return resolution.principal

    async def refusal(self) -> Unauthorized | None:
        """Why the request must be refused (401) whatever its route, public ones included: it
        carries a credential that is invalid (unknown, revoked, expired, of a deactivated user, or
        two different credentials at once). None without a credential or with a valid one."""
        if self.credential is None:
            return None
        resolution = await self.resolution()
        if resolution.principal is not None:
            return None
        return resolution.error or Unauthorized("Could not validate credentials")

    async def _resolve(self) -> Resolution:
        if self.credential is None:
            return not_authenticated()
        if self.credential.kind == "invalid":
            return Resolution(error=Unauthorized(self.credential.value))
        if self._jwt_error is not None:
            return Resolution(error=self._jwt_error)
        if self.user_id is not None and self._mode_error is not None:
            return Resolution(error=self._mode_error)
        async with self._sessionmaker() as session:
            if self.user_id is not None:
                return await resolve_user(
                    session,
                    self.user_id,
                    with_tier=self._with_tier,
                    token_version=self._token_version,
                    livemode=self._livemode,
                )
            resolution = await resolve_api_key(
                session, self._auth, self.credential.value, with_tier=self._with_tier
            )
            if session.dirty:  # last_used_at: one UPDATE, autocommitted
                await session.commit()
            return resolution


def caller_of(scope: Scope) -> Caller:
    caller: Any = scope.get("state", {}).get(CALLER_KEY)
    if not isinstance(caller, Caller):
        raise RuntimeError("No caller on this request: is AuthenticationMiddleware installed?")
    return caller


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = state_of_app(scope["app"])
            headers = Headers(scope=scope)
            caller = Caller(
                read_credential(headers),
                state.settings.auth,
                state.lookups,
                with_tier=state.settings.ratelimit.enabled and bool(state.settings.ratelimit.plans),
                mode=headers.get(MODE_HEADER),
            )
            scope.setdefault("state", {})[CALLER_KEY] = caller
        await self.app(scope, receive, send)
