from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class WebhookEvent(SQLModel, table=True):
    """One event to deliver (the outbox): written in the same transaction as the analysis' change,
    with the body frozen at that moment, so every retry sends the same bytes under the same id."""

    __tablename__ = "webhook_events"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    livemode: bool
    analysis_id: uuid.UUID = Field(foreign_key="analyses.id", ondelete="CASCADE", index=True)
    # analysis.completed | analysis.failed | analysis.rescored (asked for by a re-scoring)
    event_type: str = Field(max_length=32)
    url: str = Field(max_length=2048)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # pending -> delivered | failed
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = optional_time_field()
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = created_field()
    finished_at: datetime | None = optional_time_field()
