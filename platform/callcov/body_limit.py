"""The global request-body limit, as pure ASGI middleware.

Every body may be at most ``storage.max_body_bytes`` (1 MiB), except an audio upload (multipart to
the submission paths): ``storage.max_upload_bytes`` plus 1 MiB for the form around the file. A body
over its limit is refused with 413 ``file_too_large``: from ``Content-Length`` before anything is
read, and for a chunked (or understated) body as soon as what was read passes the limit. The rest of
the body is never read.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcov.config import StorageSettings
from callcov.errors import error_response
from callcov.state import state_of_app

UPLOAD_PATHS = frozenset({"/api/v1/analysis", "/api/v1/calls/analyze"})
# Room for the form fields and part headers around an upload of the maximum size.
FORM_OVERHEAD = 1024 * 1024
# Stripe's webhook keeps its own limit and error code (413 ``payload_too_large``, callcov.billing).
EXEMPT_PATHS = frozenset({"/api/v1/billing/webhook"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes its limit. An ``HTTPException``, so
    FastAPI's body parsing passes it to the error handler (413) instead of turning it into a 400;
    the middleware renders it itself when a layer above the routes was reading."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"The request body is larger than the limit of {limit} bytes")
        self.details = {"max_size_bytes": limit}


def limit_of(scope: Scope, storage: StorageSettings) -> int:
    content_type = Headers(scope=scope).get("content-type", "")
    if (
        scope["method"] == "POST"
        and scope["path"] in UPLOAD_PATHS
        and content_type.lower().startswith("multipart/form-data")
    ):
        return storage.max_upload_bytes + FORM_OVERHEAD
    return storage.max_body_bytes


def declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "").strip()
    return int(value) if value.isdigit() else None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        limit = limit_of(scope, state_of_app(scope["app"]).settings.storage)
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, BodyTooLarge(limit))
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._refuse(scope, receive, send, exc)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge) -> None:
        response = error_response(scope, 413, exc.detail, code="file_too_large", details=exc.details)
        await response(scope, receive, send)
