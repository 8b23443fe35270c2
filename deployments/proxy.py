"""Middleware for Serve's HTTP proxy (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``).

Serve's proxy tags every request with an ``x-request-id`` (a UUID unless the request has one) and
adds it to the response. This middleware runs outside Serve's own, so it gives the request a
CallCov ``req_…`` id first (which Serve and the app then both use), and leaves exactly one
``X-Request-ID`` header on the response.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from callcov.kit.request_id import stamp_request_id


class ProxyRequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _, scope, send = stamp_request_id(scope, send)
        await self.app(scope, receive, send)


def proxy_middlewares() -> list[Middleware]:
    return [Middleware(ProxyRequestIdMiddleware)]
