from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field


class BillingEvent(SQLModel, table=True):
    """An inbound Stripe event, stored once by its Stripe id, processed once by a job."""

    __tablename__ = "billing_events"

    id: uuid.UUID = id_field()
    stripe_event_id: str = Field(max_length=255, unique=True)
    type: str = Field(max_length=64)
    # Stripe's `created` (Unix seconds): orders events that arrive out of order.
    stripe_created: int
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # received -> processed | ignored
    status: str = Field(default="received", max_length=16)
    created_at: datetime = created_field()
    processed_at: datetime | None = optional_time_field()
