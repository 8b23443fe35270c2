from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, user_fk


class PlanChange(SQLModel, table=True):
    """A change of the account's plan at a moment: the minutes recorded before ``at`` are priced at
    ``tier_before``, the overage of a period is computed segment by segment (billing/ledger.py)."""

    __tablename__ = "plan_changes"
    __table_args__ = (Index("ix_plan_changes_user_at", "user_id", "at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    at: datetime = created_field()
    tier_before: str = Field(max_length=16)
    tier_after: str = Field(max_length=16)
    created_at: datetime = created_field()
