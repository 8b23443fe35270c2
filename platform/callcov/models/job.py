from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field


class Job(SQLModel, table=True):
    """The durable job queue. Written in the same transaction as the change that needs the work;
    claimed with a lease by the dispatcher; a lease that runs out makes the job claimable again."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "status", "run_after"),)

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=32)
    # Ids only, JSON-serialisable.
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # queued -> running -> done | failed (running with an expired lease counts as queued).
    status: str = Field(default="queued", max_length=16)
    attempts: int = 0
    max_attempts: int = 8
    # Attempts whose worker died (the lease ran out) or whose model replica died under them.
    crashes: int = 0
    run_after: datetime = created_field()
    lease_until: datetime | None = optional_time_field()
    locked_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
    finished_at: datetime | None = optional_time_field()
