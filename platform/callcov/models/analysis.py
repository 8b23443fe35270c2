from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class Analysis(SQLModel, table=True):
    """One submitted call and its analysis. Every query is scoped to (user_id, livemode)."""

    __tablename__ = "analyses"
    __table_args__ = (Index("ix_analyses_scope_created", "user_id", "livemode", "created_at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    livemode: bool
    status: str = Field(default="processing", max_length=16)
    agent_id: str = Field(max_length=255)
    contact_id: str = Field(max_length=255)
    call_direction: str | None = Field(default=None, max_length=16)
    call_timestamp: datetime | None = optional_time_field()
    duration_ms: int | None = None
    audio_url: str | None = Field(default=None, max_length=2048)
    # Where the audio is kept (storage URI); `audio_url` is what the client gave, if anything.
    audio_uri: str | None = Field(default=None, max_length=2048)
    audio_size_bytes: int | None = None
    audio_format: str | None = Field(default=None, max_length=16)
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    language: str | None = Field(default=None, max_length=16)
    transcript: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    results: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    client_metadata: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    webhook_url: str | None = Field(default=None, max_length=2048)
    error_message: str | None = Field(default=None, max_length=2000)
    processing_time_ms: int | None = None
    # What produced the results, for audits and reprocessing.
    rubric_id: str = Field(default="default", max_length=64)
    # "compliance" (free plan) or "full", from the plan at submission.
    analysis_level: str = Field(default="full", max_length=16)
    rubric_version: str | None = Field(default=None, max_length=32)
    prompt_version: str | None = Field(default=None, max_length=32)
    transcriber_model: str | None = Field(default=None, max_length=128)
    llm_model: str | None = Field(default=None, max_length=128)
    # Whether the LLM evaluated the call: evaluated | degraded | skipped | not_configured, and why not
    # (``results.evaluation``, kept in columns to count degraded analyses).
    llm_status: str | None = Field(default=None, max_length=16)
    llm_reason: str | None = Field(default=None, max_length=500)
    # The compliance requirements the newest results failed, as ",a,b," (``scoring/verdicts.py``): the
    # calls list's ``failed_check`` filter.
    failed_checks: str = Field(default="", max_length=255)
    # Optional redaction (issue 13): the PII policies applied to the transcript (empty: PII not
    # redacted; card numbers, SSNs and accounts always are), whether a bleeped copy of the recording
    # was asked for, where it is kept, and when the original was deleted (CALLCOV_STORAGE__KEEP_ORIGINAL_AUDIO).
    redact_pii: bool = False
    redact_pii_policies: list[str] = Field(default_factory=list, sa_type=JSON)
    redact_audio: bool = False
    redacted_audio_uri: str | None = Field(default=None, max_length=2048)
    original_audio_deleted_at: datetime | None = optional_time_field()
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
    completed_at: datetime | None = optional_time_field()
