"""The request-header limit, as pure ASGI middleware: 431 ``request_header_fields_too_large`` for a
request whose headers are too many or too large together.

The HTTP parser in front (uvicorn with httptools, in Ray Serve's proxy too) reads header blocks of
any size, so a 1 MiB header used to reach the routes. This refuses such a request before any layer
below looks at a header (under Serve, in the proxy: the request never reaches a replica). It bounds
what every layer after it handles, not what the parser buffered: a front proxy with its own header
limits (``docs/reliability.md``) is what caps that.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from callcov.errors import REQUEST_ID_KEY, error_response
from callcov.kit.request_id import incoming_request_id

# Like nginx's default large_client_header_buffers (4 x 8 KiB) with room to spare, and far more headers
# than any client of this API sends.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100


def too_large(scope: Scope) -> bool:
    headers = scope.get("headers", [])
    if len(headers) > MAX_HEADER_COUNT:
        return True
    return sum(len(name) + len(value) + 4 for name, value in headers) > MAX_HEADER_BYTES


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and too_large(scope):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1009})
                return
            message = f"The request headers are over the limit of {MAX_HEADER_COUNT} fields or {MAX_HEADER_BYTES} bytes"
            # In Serve's proxy no app has set the id yet: the proxy's own stamp is in the headers.
            scope = {**scope, REQUEST_ID_KEY: scope.get(REQUEST_ID_KEY) or incoming_request_id(scope) or ""}
            details = {"max_header_fields": MAX_HEADER_COUNT, "max_header_bytes": MAX_HEADER_BYTES}
            response = error_response(
                scope, 431, message, code="request_header_fields_too_large", details=details
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
