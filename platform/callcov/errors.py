"""The error hierarchy and the one renderer of the contract's error body.

Body: ``{"detail": <string or FastAPI's 422 list>, "error": {code, message, details, request_id}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

logger = logging.getLogger("callcov.errors")

REQUEST_ID_KEY = "callcov.request_id"

CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    402: "usage_limit_exceeded",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "file_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "internal_error",
    503: "service_unavailable",
}


class AppError(Exception):
    """An expected failure with a stable machine code. Subclasses set ``status_code`` and ``code``."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = dict(details or {})
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across Ray actor boundaries
        return (_rebuild, (type(self), self.message, self.details, self.headers))

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {"model": ErrorBody, "description": cls.default_message}


def _rebuild(cls: type[AppError], message: str, details: dict[str, Any], headers: dict[str, str]) -> AppError:
    return cls(message, details=details, headers=headers)


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    default_message = "Could not validate credentials"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    default_message = "Insufficient permissions"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    default_message = "Not found"


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limit_exceeded"
    default_message = "Too many requests"


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None
    request_id: str


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]
    error: ErrorInfo


def request_id_of(scope: Scope) -> str:
    return str(scope.get(REQUEST_ID_KEY, ""))


def error_response(
    scope: Scope,
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    detail: Any = None,
) -> Response:
    request_id = request_id_of(scope)
    body = {
        "detail": message if detail is None else detail,
        "error": {
            "code": code or CODES_BY_STATUS.get(status_code, "error"),
            "message": message,
            "details": dict(details) if details else None,
            "request_id": request_id,
        },
    }
    response = Response(_dumps(body), status_code=status_code, media_type="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _dumps(body: Any) -> bytes:
    try:
        return orjson.dumps(body, default=str)
    except TypeError:  # e.g. an integer beyond 64 bits echoed back from a 422 input
        return json.dumps(body, default=str).encode()


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(
        request.scope, exc.status_code, exc.message, code=exc.code, details=exc.details, headers=exc.headers
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    details = getattr(exc, "details", None)  # e.g. the body limit's max_size_bytes
    return error_response(request.scope, exc.status_code, message, headers=exc.headers, details=details)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean_error(e) for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            request.scope,
            400,
            "The request body is not valid JSON",
            code="validation_error",
            detail=errors,
            details={"errors": errors},
        )
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = f"Invalid request: {where}: {first.get('msg', 'invalid value')}" if first else "Invalid request"
    return error_response(
        request.scope, 422, message, code="validation_error", detail=errors, details={"errors": errors}
    )


def _clean_error(error: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in error.items() if k in ("type", "loc", "msg", "input")}
    if "ctx" in error:
        cleaned["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
    return json.loads(json.dumps(cleaned, default=str))  # type: ignore[no-any-return]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


class FileTooLarge(AppError):
    """The body is over the size limit; found while streaming."""

    status_code = 413
    code = "file_too_large"
    default_message = "The audio file is too large"

    def __init__(
        self,
        message: str | None = None,
        *,
        max_size_bytes: int | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        merged = dict(details or {})
        if max_size_bytes is not None:
            merged.setdefault("max_size_bytes", max_size_bytes)
            message = message or f"The file is larger than the limit of {max_size_bytes} bytes"
        super().__init__(message, details=merged, headers=headers)
