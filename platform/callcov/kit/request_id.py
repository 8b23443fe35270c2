"""Request ids: one ``req_…`` id per request, kept from upstream when well formed, carried as the
request's only ``X-Request-ID`` header and sent back as the response's only one. The one
implementation, used by the app (``callcov.middleware``) and by the Serve proxy (``deployments/proxy.py``)."""

from __future__ import annotations

import contextvars
import re

from starlette.types import Message, Scope, Send

from callcov.kit.tokens import generate_request_id

REQUEST_ID_PATTERN = re.compile(r"req_[A-Za-z0-9]{8,64}")
HEADER = b"x-request-id"
# The id of the request being served (set by the app's request-id middleware), for log records.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "callcov_request_id", default=None
)


def incoming_request_id(scope: Scope) -> str | None:
    """A ``req_…`` id set upstream (the Serve proxy, a load balancer, or the client), if well formed."""
    for name, value in scope.get("headers", []):
        if name == HEADER:
            candidate = value.decode("latin-1")
            return candidate if REQUEST_ID_PATTERN.fullmatch(candidate) else None
    return None


def with_request_id_header(send: Send, request_id: str) -> Send:
    """A ``send`` that leaves exactly one ``X-Request-ID`` header, ``request_id``, on the response."""
    header = (HEADER, request_id.encode())

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
            message["headers"] = [*kept, header]
        await send(message)

    return send_with_id


def stamp_request_id(scope: Scope, send: Send) -> tuple[str, Scope, Send]:
    """The request's id, a copy of ``scope`` with it as the only ``x-request-id`` header, and a
    ``send`` that puts it on the response."""
    request_id = incoming_request_id(scope) or generate_request_id()
    headers = [(name, value) for name, value in scope.get("headers", []) if name != HEADER]
    stamped = dict(scope, headers=[*headers, (HEADER, request_id.encode())])
    return request_id, stamped, with_request_id_header(send, request_id)
