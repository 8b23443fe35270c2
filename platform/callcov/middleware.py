"""Request ids (and the last-resort 500) and trailing-slash tolerance, as pure ASGI middleware."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcov.errors import REQUEST_ID_KEY, error_response, request_id_of
from callcov.kit.request_id import current_request_id, stamp_request_id

logger = logging.getLogger("callcov.requests")


class RequestIdMiddleware:
    """Gives each request a ``req_…`` id (or keeps a well-formed one from upstream), sends it as
    ``X-Request-ID``, and turns any unhandled exception into the contract's 500 body without a
    stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, scope, send = stamp_request_id(scope, send)
        scope[REQUEST_ID_KEY] = request_id
        token = current_request_id.set(request_id)
        try:
            await call_with_error_envelope(self.app, scope, receive, send)
        finally:
            current_request_id.reset(token)


async def call_with_error_envelope(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app``; an unhandled exception becomes the contract's 500 body (no stack trace), if the
    response has not started yet."""
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except Exception:
        logger.exception(
            "unhandled error in %s %s (%s)", scope["method"], scope["path"], request_id_of(scope)
        )
        if not started:
            response = error_response(
                scope,
                500,
                "An internal error occurred. Quote the request id to support.",
                code="internal_error",
            )
            await response(scope, receive, tracking_send)


class InternalErrorMiddleware:
    """Innermost catch-all, so a 500 still passes through the idempotency (which releases the key) and
    rate-limit layers. The request-id middleware repeats it as the last resort for the layers above."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await call_with_error_envelope(self.app, scope, receive, send)


class TrailingSlashMiddleware:
    """Serves ``/x`` and ``/x/`` alike, without a redirect. Routes are registered without a trailing
    slash; this strips one from the request path before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                raw = scope.get("raw_path") or path.encode()
                scope = dict(scope, path=path.rstrip("/") or "/", raw_path=raw.rstrip(b"/") or b"/")
        await self.app(scope, receive, send)
