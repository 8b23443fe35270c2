from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class UsageReport(SQLModel, table=True):
    """Overage sent to Stripe (as an invoice item), written before the call and confirmed after it:
    a crash in between resends the same report under the same idempotency key."""

    __tablename__ = "usage_reports"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    period_start: datetime = created_field()
    tier: str = Field(max_length=16)
    overage_minutes: float  # of the period, up to and including this report
    amount: int  # cents added by this report
    # The usage records this report covers: their `reported_at` is set when Stripe confirms.
    record_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    status: str = Field(default="pending", max_length=16)  # pending -> confirmed
    stripe_invoice_item_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = created_field()
    confirmed_at: datetime | None = optional_time_field()
