"""Errors of the rubrics resource."""

from __future__ import annotations

from callcov.errors import AppError, BadRequest, NotFound


class RubricNotFoundError(NotFound):
    default_message = "Rubric not found"


class RubricArchived(AppError):
    status_code = 409
    code = "conflict"
    default_message = "The rubric is archived"


class BuiltinReadOnly(BadRequest):
    default_message = "Built-in rubrics cannot be changed or archived"


class RubricUnavailable(BadRequest):
    """A submission names a rubric it cannot use: unknown, another account's, or archived."""

    code = "validation_error"
