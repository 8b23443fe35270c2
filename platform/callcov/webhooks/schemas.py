"""Webhook objects as the API returns them."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from callcov.config import WebhookSettings
from callcov.kit.text import SafeStr
from callcov.kit.time import to_unix
from callcov.models import WebhookAttempt, WebhookEvent, WebhookSecret
from callcov.webhooks import events, secret_store


class WebhookSecretPublic(BaseModel):
    object: Literal["webhook_secret"] = "webhook_secret"
    secret: str = Field(description="`whsec_…`: verify deliveries with any Standard Webhooks library.")
    livemode: bool
    created: int
    rotated: int | None
    previous_secret_expires: int | None = Field(
        description="Until then (Unix seconds) deliveries are also signed with the previous secret."
    )

    @classmethod
    def of(cls, row: WebhookSecret, settings: WebhookSettings) -> WebhookSecretPublic:
        previous = secret_store.previous(settings, row)
        return cls(
            secret=secret_store.current(settings, row),
            livemode=row.livemode,
            created=to_unix(row.created_at) or 0,
            rotated=to_unix(row.rotated_at),
            previous_secret_expires=to_unix(row.previous_expires_at) if previous else None,
        )


class WebhookDeliveryPublic(BaseModel):
    """One delivery attempt of one event."""

    id: uuid.UUID
    object: Literal["webhook_delivery"] = "webhook_delivery"
    created: int = Field(description="When the attempt was made (Unix seconds).")
    event_id: str = Field(description="The `webhook-id` header: the same on every attempt of an event.")
    event_type: str
    url: str
    attempt: int
    status_code: int | None
    duration_ms: int
    outcome: Literal["succeeded", "retrying", "failed"]
    error: str | None
    response_excerpt: str | None
    next_retry_at: int | None
    livemode: bool

    @classmethod
    def of(cls, row: WebhookAttempt, event: WebhookEvent) -> WebhookDeliveryPublic:
        return cls(
            id=row.id,
            created=to_unix(row.created_at) or 0,
            event_id=events.message_id(event.id),
            event_type=event.event_type,
            url=row.url,
            attempt=row.attempt,
            status_code=row.status_code,
            duration_ms=row.duration_ms,
            outcome=row.outcome,  # type: ignore[arg-type]
            error=row.error,
            response_excerpt=row.response_excerpt,
            next_retry_at=to_unix(row.next_retry_at),
            livemode=event.livemode,
        )


class SetWebhookRequest(BaseModel):
    webhook_url: SafeStr = Field(min_length=1, max_length=2048)
