from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field


class Subscription(SQLModel, table=True):
    """The account's plan: one row per account, created on free at first use. The row is also the
    per-account lock of metering (``SELECT … FOR UPDATE`` on PostgreSQL)."""

    __tablename__ = "subscriptions"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", unique=True, nullable=False)
    tier: str = Field(default="free", max_length=16)
    # active | past_due | incomplete | unpaid (Stripe's names); a canceled plan falls back to free.
    status: str = Field(default="active", max_length=24)
    # "local" (the embedded ledger) or "stripe".
    provider: str = Field(default="local", max_length=16)
    current_period_start: datetime = created_field()
    current_period_end: datetime = created_field()
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = optional_time_field()
    stripe_customer_id: str | None = Field(default=None, max_length=255, index=True)
    stripe_subscription_id: str | None = Field(default=None, max_length=255, index=True)
    # `created` of the newest Stripe event applied: older events arriving late change nothing.
    stripe_event_at: int | None = None
    # The account's own cap on overage minutes per period; None: the plan's default (settings).
    overage_cap_minutes: int | None = None
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
