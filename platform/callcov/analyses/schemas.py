"""The analysis object of CONTRACT.md §4, as the API returns it."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from callcov.kit.time import to_unix
from callcov.models import Analysis

Status = Literal["processing", "completed", "failed"]
# What CallCov adds to an analysis' ``metadata`` beside the client's keys (CONTRACT.md §4); a client
# key of one of these names is refused at submission (it would be overwritten).
RESERVED_METADATA_KEYS = ("webhook_url", "completed_at", "processing_time_ms", "error_message")


class CallInfo(BaseModel):
    agent_id: str
    contact_id: str
    direction: str | None
    timestamp: int | None
    duration_ms: int | None
    duration_seconds: float | None


class AudioInfo(BaseModel):
    url: str | None
    size_bytes: int | None
    format: str | None
    duration_seconds: float | None
    channels: int | None
    sample_rate: int | None
    redacted: bool = Field(
        default=False, description="A bleeped copy of the recording exists (`redact_audio`)."
    )
    original_deleted: bool = Field(
        default=False, description="The original recording was deleted once the bleeped copy existed."
    )


class AnalysisPublic(BaseModel):
    id: uuid.UUID
    analysis_id: uuid.UUID
    object: Literal["analysis"] = "analysis"
    created: int
    status: Status
    livemode: bool
    call: CallInfo
    audio: AudioInfo
    transcript: dict[str, Any] | None
    results: dict[str, Any] | None
    metadata: dict[str, Any]
    redact_pii: bool = Field(default=False, description="PII was redacted (`redact_pii_policies`).")
    redact_pii_policies: list[str] = Field(
        default_factory=list, description="The PII policies applied; empty without `redact_pii`."
    )
    redact_audio: bool = Field(default=False, description="A bleeped copy of the recording was asked for.")

    @classmethod
    def of(cls, row: Analysis) -> AnalysisPublic:
        seconds = row.duration_ms / 1000 if row.duration_ms is not None else None
        return cls(
            id=row.id,
            analysis_id=row.id,
            created=to_unix(row.created_at) or 0,
            status=row.status,  # type: ignore[arg-type]
            livemode=row.livemode,
            call=CallInfo(
                agent_id=row.agent_id,
                contact_id=row.contact_id,
                direction=row.call_direction,
                timestamp=to_unix(row.call_timestamp),
                duration_ms=row.duration_ms,
                duration_seconds=seconds,
            ),
            audio=AudioInfo(
                url=row.audio_url,
                size_bytes=row.audio_size_bytes,
                format=row.audio_format,
                duration_seconds=seconds,
                channels=row.audio_channels,
                sample_rate=row.audio_sample_rate,
                redacted=row.redacted_audio_uri is not None,
                original_deleted=row.original_audio_deleted_at is not None,
            ),
            transcript=row.transcript,
            results=row.results,
            metadata={**row.client_metadata, **_callcov_metadata(row)},
            redact_pii=row.redact_pii,
            redact_pii_policies=list(row.redact_pii_policies or []),
            redact_audio=row.redact_audio,
        )


def _callcov_metadata(row: Analysis) -> dict[str, Any]:
    """The keys CallCov adds to ``metadata`` (``RESERVED_METADATA_KEYS``); they win over a client key
    of the same name stored before such keys were refused."""
    return {
        "webhook_url": row.webhook_url,
        "completed_at": to_unix(row.completed_at),
        "processing_time_ms": row.processing_time_ms,
        "error_message": row.error_message,
    }
