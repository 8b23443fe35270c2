"""Middleware for Serve's HTTP proxy (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``), on every node.

- ``ProxyRequestIdMiddleware``: Serve's proxy tags every request with an ``x-request-id`` (a UUID
  unless the request has one) and adds it to the response. This middleware runs outside Serve's own,
  so it gives the request a CallCov ``req_…`` id first (which Serve and the app then both use), and
  leaves exactly one ``X-Request-ID`` header on the response.
- ``InternalRouteGuard``: the model routes (``/llm``: llama.cpp on CPUs, vLLM on GPUs) are for the
  dispatcher only. A request under them must carry ``Authorization: Bearer <internal key>``
  (``CALLCOV_INFERENCE__LLM_API_KEY``, compared in constant time); anything else gets the same 404
  as an unknown route, so the port never gives free inference to the internet. With no key set,
  every such request is refused. The dispatcher and ``/health`` check that an unauthenticated
  request is refused (``callcov.inference.llm_check``), so a proxy without this guard fails loudly.
- ``HeaderLimitMiddleware`` (``callcov.header_limit``): 431 for oversized headers, before the request
  is handed to any replica.
"""

from __future__ import annotations

import hmac
import json
import re

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from callcov.config import get_settings
from callcov.header_limit import HeaderLimitMiddleware
from callcov.kit.request_id import stamp_request_id

NOT_FOUND = json.dumps(
    {"error": {"type": "invalid_request_error", "code": "not_found", "message": "Not found."}}
).encode()


class ProxyRequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _, scope, send = stamp_request_id(scope, send)
        await self.app(scope, receive, send)


class InternalRouteGuard:
    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], key: str) -> None:
        self.app = app
        self.prefixes = tuple(p.rstrip("/").lower() for p in prefixes)
        self.expected = f"Bearer {key}".encode() if key else None

    def _internal(self, path: str) -> bool:
        path = re.sub("/{2,}", "/", path).lower()
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)

    def _authorised(self, scope: Scope) -> bool:
        if self.expected is None:
            return False
        given = [v for k, v in scope.get("headers", []) if k == b"authorization"]
        return len(given) == 1 and hmac.compare_digest(given[0], self.expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self._internal(scope.get("path", "")):
            if not self._authorised(scope):
                await _not_found(scope, send)
                return
        await self.app(scope, receive, send)


async def _not_found(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(NOT_FOUND)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": NOT_FOUND})


def proxy_middlewares() -> list[Middleware]:
    inference = get_settings().inference
    guard = Middleware(InternalRouteGuard, prefixes=(inference.llm_route_prefix,), key=inference.llm_api_key)
    return [Middleware(ProxyRequestIdMiddleware), Middleware(HeaderLimitMiddleware), guard]
