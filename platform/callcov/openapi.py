"""The OpenAPI document states every refusal an operation can answer, and a 405 names every method
the document lists for its path.

The edge layers (body limit, credentials, rate limits, JSON parsing, idempotency) answer for every
operation alike, so their responses are added here, once, to each operation they apply to, instead
of being repeated on every route. A response a route already declares keeps its description, with
the edge's reason appended.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from callcov.errors import error_response

# Signed by Stripe: no credential is read and no rate limit applies (callcov.ratelimit.middleware).
NO_EDGE = frozenset({"/api/v1/billing/webhook"})
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
RATE_HEADERS = {
    name: {"description": description, "schema": {"type": "integer"}}
    for name, description in (
        ("Retry-After", "Seconds until a request may succeed"),
        ("X-RateLimit-Limit", "Requests allowed in the window"),
        ("X-RateLimit-Remaining", "Requests left in the window"),
        ("X-RateLimit-Reset", "Unix seconds when the window ends"),
    )
}
INVALID_CREDENTIAL = "`unauthorized`: an invalid credential was sent (refused on every operation)"
MISSING_CREDENTIAL = "`unauthorized`: the credential is missing, invalid, expired or revoked"
MALFORMED = "`validation_error`: the body is not valid JSON, or the Idempotency-Key is malformed"
TOO_LARGE = "`file_too_large`: the request body is over its size limit"
INVALID = "`validation_error`: the request does not match the schema (FastAPI's list in `detail`)"
IN_USE = "`idempotency_key_in_use`: a request with the same Idempotency-Key is still running"
REUSED = "`idempotency_key_reused`: the Idempotency-Key was used with another body"
LIMITED = "`rate_limit_exceeded`: too many requests; retry after `Retry-After` seconds"


def _declare(
    responses: dict[str, Any], code: str, reason: str, headers: dict[str, Any] | None = None
) -> None:
    entry = responses.setdefault(code, {"description": reason})
    if reason not in entry["description"]:
        entry["description"] = f"{entry['description']}. Also {reason}"
    entry["content"] = ERROR_CONTENT  # FastAPI's 422 (HTTPValidationError) is not the body we send
    if headers:
        entry.setdefault("headers", {}).update(headers)


def document_edge_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Adds the edge's responses to every operation (idempotent: the document is cached)."""
    for path, item in document.get("paths", {}).items():
        if path in NO_EDGE:
            continue
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            secured = bool(operation.get("security"))
            _declare(responses, "401", MISSING_CREDENTIAL if secured else INVALID_CREDENTIAL)
            _declare(responses, "429", LIMITED, RATE_HEADERS)
            if "requestBody" in operation or "422" in responses:  # FastAPI's: parameters or body
                _declare(responses, "422", INVALID)
            if "requestBody" in operation:
                _declare(responses, "400", MALFORMED)
                _declare(responses, "413", TOO_LARGE)
            if method == "post" and secured:
                _declare(responses, "400", MALFORMED)
                _declare(responses, "409", IN_USE)
                _declare(responses, "422", REUSED)
    return document


def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def install_openapi(app: FastAPI) -> None:
    """The document with the edge's responses, and 405s with an ``Allow`` of the documented methods
    (Starlette's names only the first route that matched the path)."""
    generate = app.openapi
    methods_by_path: list[tuple[re.Pattern[str], str]] = []

    def openapi() -> dict[str, Any]:
        return document_edge_responses(generate())

    def allowed(path: str) -> str | None:
        if not methods_by_path:
            for template, item in openapi()["paths"].items():
                methods_by_path.append((_path_pattern(template), ", ".join(sorted(m.upper() for m in item))))
        return next((methods for pattern, methods in methods_by_path if pattern.match(path)), None)

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        headers = dict(getattr(exc, "headers", None) or {})
        headers["Allow"] = allowed(request.scope["path"]) or headers.get("Allow", "")
        detail = exc.detail if isinstance(exc, HTTPException) else "Method Not Allowed"
        return error_response(request.scope, 405, str(detail), headers=headers)

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(405, method_not_allowed)
