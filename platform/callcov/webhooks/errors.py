"""Errors of the webhooks domain."""

from __future__ import annotations

from callcov.errors import AppError


class InvalidWebhookUrl(AppError):
    """A ``webhook_url`` that is not http(s), cannot be resolved, or resolves to a refused address."""

    status_code = 400
    code = "invalid_url"
    default_message = "The webhook_url is not allowed"
