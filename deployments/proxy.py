"""Middleware for Serve's HTTP proxy (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``).

Serve's proxy tags every request with an ``x-request-id`` (a UUID unless the request has one) and
adds it to the response. This middleware runs outside Serve's own, so it gives the request a
CallCov ``req_…`` id first (which Serve and the app then both use), and leaves exactly one
``X-Request-ID`` header on the response.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from callcov.kit.tokens import generate_request_id
from callcov.middleware import incoming_request_id, with_request_id_header


class ProxyRequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or generate_request_id()
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"x-request-id"]
        scope = dict(scope, headers=[*headers, (b"x-request-id", request_id.encode())])
        await self.app(scope, receive, with_request_id_header(send, request_id))


def proxy_middlewares() -> list[Middleware]:
    return [Middleware(ProxyRequestIdMiddleware)]
