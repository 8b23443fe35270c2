from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class RescoreRun(SQLModel, table=True):
    """A bulk re-scoring run (issue 14): the selection it was started with, where its paging stands
    (``cursor_*``: the last analysis it has queued, in (created_at, id) order) and its status."""

    __tablename__ = "rescore_runs"
    __table_args__ = (Index("ix_rescore_runs_scope_created", "user_id", "livemode", "created_at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    livemode: bool
    rubric_id: str = Field(max_length=64)
    rubric_version: str | None = Field(default=None, max_length=32)
    # {since, until, agent_id, status}: analyses created in [since, until), frozen at creation.
    selection: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    retranscribe: bool = False
    webhook: bool = False
    status: str = Field(default="running", max_length=16)  # running | completed
    selected: int = 0
    cursor_created_at: datetime | None = optional_time_field()
    cursor_id: uuid.UUID | None = None
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
    finished_at: datetime | None = optional_time_field()


class Rescore(SQLModel, table=True):
    """One re-scoring of one analysis, asked through the API or by a run; a run re-scores an
    analysis at most once (``uq_rescores_run_analysis``)."""

    __tablename__ = "rescores"
    __table_args__ = (
        UniqueConstraint("run_id", "analysis_id", name="uq_rescores_run_analysis"),
        Index("ix_rescores_analysis_created", "analysis_id", "created_at"),
        Index("ix_rescores_run_status", "run_id", "status"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    livemode: bool
    analysis_id: uuid.UUID = Field(foreign_key="analyses.id", ondelete="CASCADE", nullable=False)
    run_id: uuid.UUID | None = Field(default=None, foreign_key="rescore_runs.id", ondelete="CASCADE")
    rubric_id: str = Field(max_length=64)
    rubric_version: str | None = Field(default=None, max_length=32)
    # "compliance" or "full": the plan's analysis level when it was asked for.
    analysis_level: str = Field(default="full", max_length=16)
    retranscribe: bool = False
    webhook: bool = False
    # Metered minutes (a retranscription; 0 when only the stored transcript is scored).
    minutes: float = 0.0
    status: str = Field(default="processing", max_length=16)  # processing | completed | failed
    error_message: str | None = Field(default=None, max_length=2000)
    results_version: int | None = None
    created_at: datetime = created_field()
    completed_at: datetime | None = optional_time_field()


class AnalysisResult(SQLModel, table=True):
    """One version of an analysis' results. Version 1 is the submission's, written when the first
    re-scoring completes; ``analyses.results`` always holds the newest."""

    __tablename__ = "analysis_results"
    __table_args__ = (UniqueConstraint("analysis_id", "version", name="uq_analysis_results_version"),)

    id: uuid.UUID = id_field()
    analysis_id: uuid.UUID = Field(foreign_key="analyses.id", ondelete="CASCADE", nullable=False)
    version: int
    rubric_id: str = Field(max_length=64)
    rubric_version: str | None = Field(default=None, max_length=32)
    rescore_id: uuid.UUID | None = None
    results: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = created_field()
