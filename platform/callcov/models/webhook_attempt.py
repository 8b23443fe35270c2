from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt to deliver an event, recorded before the next one is scheduled."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_analysis_created", "analysis_id", "created_at"),)

    id: uuid.UUID = id_field()
    event_id: uuid.UUID = Field(foreign_key="webhook_events.id", ondelete="CASCADE", index=True)
    analysis_id: uuid.UUID = Field(foreign_key="analyses.id", ondelete="CASCADE")
    attempt: int
    url: str = Field(max_length=2048)
    status_code: int | None = None
    duration_ms: int
    # succeeded | retrying | failed
    outcome: str = Field(max_length=16)
    response_excerpt: str | None = Field(default=None, max_length=2000)
    error: str | None = Field(default=None, max_length=1000)
    next_retry_at: datetime | None = optional_time_field()
    created_at: datetime = created_field()
