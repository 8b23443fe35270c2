"""Errors of re-scoring."""

from __future__ import annotations

from callcov.errors import AppError, BadRequest, NotFound


class NotRescorable(AppError):
    """The analysis cannot be re-scored as asked (still processing, no transcript, audio deleted)."""

    status_code = 409
    code = "conflict"
    default_message = "The analysis cannot be re-scored"


class WebhookNotConfigured(BadRequest):
    code = "validation_error"
    default_message = "webhook: true needs the analysis to have a webhook_url (PUT /analysis/{id}/webhook)"


class RescoreNotFound(NotFound):
    default_message = "Rescore not found"


class RescoreRunNotFound(NotFound):
    default_message = "Rescore run not found"
