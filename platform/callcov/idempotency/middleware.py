"""``Idempotency-Key`` on POST: replay the first response, refuse a different body, refuse while in flight.

Keys are scoped to the credential's account and mode, and a stored response is replayed only to the
credential that made the first request (the API key, or the user's JWTs), and only when the route
would serve that caller: a request without a valid principal, to a public route, or with an API key
to a JWT-only route, is passed through untouched, so it gets the route's own answer (401, 403).
Stored bodies are sealed (encrypted) at rest. Responses with status 400, 401, 403, 409, 422, 429
and 5xx are not stored, so a corrected retry with the same key goes through, as in Stripe's API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcov.auth.middleware import caller_of
from callcov.auth.principal import Principal
from callcov.config import IdempotencySettings, StorageSettings
from callcov.errors import error_response
from callcov.idempotency import store
from callcov.idempotency.body import BodyTooLarge, fingerprint, replay_receive, spool_body
from callcov.idempotency.routes import Requirement, requirement
from callcov.state import state_of_app

logger = logging.getLogger("callcov.idempotency")

# Refusals, not results: a corrected retry with the same key must go through.
NOT_STORED = frozenset({400, 401, 403, 409, 422, 429})
KEPT_HEADERS = frozenset({"content-type", "location", "allow"})
Sessionmaker = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class _Keys:
    """What the key store needs: its sessions, its settings, and the body size limits."""

    sessionmaker: Sessionmaker
    settings: IdempotencySettings
    limits: StorageSettings


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        state = state_of_app(scope["app"])
        settings = state.settings.idempotency
        if not key or len(key) > settings.max_key_length:
            response = error_response(
                scope,
                400,
                f"Idempotency-Key must be 1 to {settings.max_key_length} characters",
                code="validation_error",
            )
            await response(scope, receive, send)
            return
        principal = (await caller_of(scope).resolution()).principal
        if principal is None or not _serves(requirement(scope), principal):
            await self.app(scope, receive, send)
            return
        keys = _Keys(state.sessionmaker, settings, state.settings.storage)
        key_scope = store.Scope(
            principal.account_id,
            principal.livemode,
            key,
            credential=credential_id(principal),
            keys=tuple(state.settings.webhooks.encryption_keys),
        )
        await self._handle(keys, key_scope, scope, receive, send)

    async def _handle(
        self, keys: _Keys, key: store.Scope, scope: Scope, receive: Receive, send: Send
    ) -> None:
        limits = keys.limits
        try:
            spool, size = await spool_body(
                receive,
                max_bytes=limits.max_upload_bytes + 1024 * 1024,
                memory_bytes=limits.spool_memory_bytes,
            )
        except BodyTooLarge as exc:
            response = error_response(
                scope,
                413,
                "Request body too large",
                code="file_too_large",
                details={"max_size_bytes": exc.limit},
            )
            await response(scope, receive, send)
            return
        with spool:
            content_type = Headers(scope=scope).get("content-type", "")
            digest = fingerprint(
                scope["method"], scope["path"], scope.get("query_string", b""), content_type, spool, size
            )
            claim = await store.claim(keys.sessionmaker, keys.settings, key, digest)
            if isinstance(claim, store.Proceed):
                await self._run(keys.sessionmaker, key, claim, scope, replay_receive(spool, receive), send)
                return
        await _answer_without_running(claim, scope, receive, send)

    async def _run(  # type: ignore[no-untyped-def]
        self,
        sessionmaker: Sessionmaker,
        key: store.Scope,
        claim: store.Proceed,
        scope: Scope,
        messages,
        send: Send,
    ) -> None:
        status = 500
        kept: list[tuple[str, str]] = []
        body = bytearray()

        async def receive_replayed() -> Message:
            return await messages.__anext__()  # type: ignore[no-any-return]

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.decode().lower() in KEPT_HEADERS:
                        kept.append((name.decode(), value.decode()))
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        stored = False
        try:
            await self.app(scope, receive_replayed, capture)
            if status < 500 and status not in NOT_STORED:
                await store.complete(sessionmaker, key, claim.record_id, status, kept, bytes(body))
                stored = True
        finally:
            if not stored:
                await store.release(sessionmaker, claim.record_id)


def _serves(route: Requirement, principal: Principal) -> bool:
    """Whether the route would serve this principal (public routes are never made idempotent)."""
    if route is Requirement.jwt:
        return principal.via == "jwt"
    return route is Requirement.principal


def credential_id(principal: Principal) -> str:
    """The credential a stored response is replayed to: the API key, or the user's token lane."""
    if principal.via == "api_key":
        return f"api_key:{principal.api_key_id}"
    return f"jwt:{principal.account_id}"


async def _answer_without_running(claim: store.Claim, scope: Scope, receive: Receive, send: Send) -> None:
    if isinstance(claim, store.Replay):
        await send(
            {
                "type": "http.response.start",
                "status": claim.status,
                "headers": [(n.encode(), v.encode()) for n, v in claim.headers]
                + [(b"idempotent-replayed", b"true"), (b"content-length", str(len(claim.body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": claim.body})
        return
    if isinstance(claim, store.Mismatch):
        response = error_response(
            scope,
            422,
            "This Idempotency-Key was first used by another credential of the account: use a new key"
            if claim.other_credential
            else "Keys for idempotent requests can only be used with the same parameters they were first used with",
            code="idempotency_key_reused",
        )
    elif isinstance(claim, store.Unreadable):
        response = error_response(
            scope,
            409,
            "The request with this Idempotency-Key already completed, but its stored response can no "
            "longer be read: check the result, then use a new key",
            code="idempotency_response_unavailable",
        )
    else:
        response = error_response(
            scope,
            409,
            "A request with this Idempotency-Key is still being processed: retry later",
            code="idempotency_key_in_use",
        )
    await response(scope, receive, send)
