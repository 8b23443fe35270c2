"""``Idempotency-Key`` on POST: replay the first response, refuse a different body, refuse while in flight.

Keys are scoped to the credential's account and mode. Requests without a valid credential are passed
through untouched (the public /auth endpoints return secrets, which must never be replayed to a
stranger who guessed a key). Responses with status 400, 409, 422, 429 and 5xx are not stored, so a
corrected retry with the same key goes through, as in Stripe's API.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcov.auth.credentials import read_credential
from callcov.auth.principal import resolve_scope
from callcov.errors import error_response
from callcov.idempotency import store
from callcov.idempotency.body import BodyTooLarge, fingerprint, replay_receive, spool_body
from callcov.state import AppState, state_of_app

logger = logging.getLogger("callcov.idempotency")

NOT_STORED = frozenset({400, 409, 422, 429})
KEPT_HEADERS = frozenset({"content-type", "location"})


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
        if not key or len(key) > state.settings.idempotency.max_key_length:
            response = error_response(
                scope,
                400,
                f"Idempotency-Key must be 1 to {state.settings.idempotency.max_key_length} characters",
                code="validation_error",
            )
            await response(scope, receive, send)
            return
        async with state.sessionmaker() as session:
            owner = await resolve_scope(session, state.settings.auth, read_credential(headers))
        if owner is None:
            await self.app(scope, receive, send)
            return
        await self._handle(state, store.Scope(owner[0], owner[1], key), scope, receive, send)

    async def _handle(
        self, state: AppState, key: store.Scope, scope: Scope, receive: Receive, send: Send
    ) -> None:
        limits = state.settings.storage
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
            digest = fingerprint(scope["method"], scope["path"], content_type, spool, size)
            claim = await store.claim(state.sessionmaker, state.settings.idempotency, key, digest)
            if isinstance(claim, store.Proceed):
                await self._run(state, claim, scope, replay_receive(spool, receive), send)
                return
        await _answer_without_running(claim, scope, receive, send)

    async def _run(self, state: AppState, claim: store.Proceed, scope: Scope, messages, send: Send) -> None:  # type: ignore[no-untyped-def]
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
                await store.complete(state.sessionmaker, claim.record_id, status, kept, bytes(body))
                stored = True
        finally:
            if not stored:
                await store.release(state.sessionmaker, claim.record_id)


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
            "Keys for idempotent requests can only be used with the same parameters they were first used with",
            code="idempotency_key_reused",
        )
    else:
        response = error_response(
            scope,
            409,
            "A request with this Idempotency-Key is still being processed: retry later",
            code="idempotency_key_in_use",
        )
    await response(scope, receive, send)
