from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class UsageRecord(SQLModel, table=True):
    """Audio minutes of one live-mode analysis, recorded once, with the analysis' creation; and of
    each retranscription of it (``rescore_id`` set, one record per re-scoring)."""

    __tablename__ = "usage_records"
    # The minutes of a billing period are summed over (user_id, created_at) ranges.
    __table_args__ = (
        Index("ix_usage_records_user_created", "user_id", "created_at"),
        # One record for the submission itself (the retranscriptions' are unique by rescore_id).
        Index(
            "uq_usage_records_submission",
            "analysis_id",
            unique=True,
            postgresql_where=text("rescore_id IS NULL"),
            sqlite_where=text("rescore_id IS NULL"),
        ),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    analysis_id: uuid.UUID = Field(foreign_key="analyses.id", ondelete="CASCADE")
    rescore_id: uuid.UUID | None = Field(
        default=None, foreign_key="rescores.id", ondelete="CASCADE", unique=True
    )
    minutes: float
    created_at: datetime = created_field()
    # Set when the billing provider has confirmed it (Stripe usage reporting).
    reported_at: datetime | None = optional_time_field()
    # Set once when its analysis failed for good: the minutes no longer count (docs/api.md, "Refunds").
    voided_at: datetime | None = optional_time_field()
