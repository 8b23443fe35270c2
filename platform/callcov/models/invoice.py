from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, user_fk


class Invoice(SQLModel, table=True):
    """An invoice of the account: issued by the local ledger, or mirrored from Stripe's webhooks."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_user_created", "user_id", "created_at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    provider: str = Field(max_length=16)
    stripe_invoice_id: str | None = Field(default=None, max_length=255, unique=True)
    # draft | open | paid | uncollectible | void (Stripe's names)
    status: str = Field(max_length=16)
    tier: str | None = Field(default=None, max_length=16)
    amount_due: int  # cents
    amount_paid: int = 0
    currency: str = Field(default="usd", max_length=3)
    description: str | None = Field(default=None, max_length=500)
    hosted_invoice_url: str | None = Field(default=None, max_length=2048)
    period_start: datetime = created_field()
    period_end: datetime = created_field()
    created_at: datetime = created_field()
