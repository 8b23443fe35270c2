"""The re-scoring objects as the API returns them."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from callcov.kit.time import to_unix
from callcov.models import AnalysisResult, Rescore, RescoreRun
from callcov.rubrics.refs import REF_PATTERN


class RescoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric: str = Field(
        pattern=REF_PATTERN,
        description="A built-in rubric (`default`, `default@2`) or the account's (`rub_…`, `rub_…@3`); "
        "an unversioned reference is pinned to its latest version now.",
    )
    webhook: bool = Field(default=False, description="Send `analysis.rescored` to the analysis' webhook URL.")
    retranscribe: bool = Field(
        default=False, description="Transcribe the stored recording again first (metered like a submission)."
    )


class RubricUsed(BaseModel):
    id: str
    version: str | None


class RescorePublic(BaseModel):
    id: uuid.UUID
    object: Literal["rescore"] = "rescore"
    status: Literal["processing", "completed", "failed"]
    analysis_id: uuid.UUID
    rubric: RubricUsed
    retranscribe: bool
    webhook: bool
    livemode: bool
    run_id: uuid.UUID | None
    results_version: int | None = Field(description="The results version it wrote, once completed.")
    error_message: str | None
    created: int
    completed: int | None

    @classmethod
    def of(cls, row: Rescore) -> RescorePublic:
        return cls(
            id=row.id,
            status=row.status,  # type: ignore[arg-type]
            analysis_id=row.analysis_id,
            rubric=RubricUsed(id=row.rubric_id, version=row.rubric_version),
            retranscribe=row.retranscribe,
            webhook=row.webhook,
            livemode=row.livemode,
            run_id=row.run_id,
            results_version=row.results_version,
            error_message=row.error_message,
            created=to_unix(row.created_at) or 0,
            completed=to_unix(row.completed_at),
        )


class ResultsVersion(BaseModel):
    object: Literal["analysis_results"] = "analysis_results"
    version: int
    rubric: RubricUsed
    rescore_id: uuid.UUID | None = Field(
        description="The re-scoring that wrote it; null for the submission's."
    )
    created: int
    results: dict[str, Any] | None

    @classmethod
    def of(cls, row: AnalysisResult) -> ResultsVersion:
        return cls(
            version=row.version,
            rubric=RubricUsed(id=row.rubric_id, version=row.rubric_version),
            rescore_id=row.rescore_id,
            created=to_unix(row.created_at) or 0,
            results=row.results,
        )


class RunError(BaseModel):
    analysis_id: uuid.UUID
    rescore_id: uuid.UUID
    message: str | None


class RescoreRunPublic(BaseModel):
    id: uuid.UUID
    object: Literal["rescore_run"] = "rescore_run"
    status: Literal["running", "completed"]
    livemode: bool
    rubric: RubricUsed
    selection: dict[str, Any]
    retranscribe: bool
    webhook: bool
    selected: int = Field(description="Analyses the selection matched when the run started.")
    queued: int = Field(description="Re-scorings the run has started so far.")
    done: int
    failed: int
    errors: list[RunError] = Field(description="The per-call errors (at most 100, oldest first).")
    created: int
    updated: int
    finished: int | None

    @classmethod
    def of(cls, row: RescoreRun, counts: dict[str, int], errors: list[RunError]) -> RescoreRunPublic:
        return cls(
            id=row.id,
            status=row.status,  # type: ignore[arg-type]
            livemode=row.livemode,
            rubric=RubricUsed(id=row.rubric_id, version=row.rubric_version),
            selection=row.selection,
            retranscribe=row.retranscribe,
            webhook=row.webhook,
            selected=row.selected,
            queued=sum(counts.values()),
            done=counts.get("completed", 0),
            failed=counts.get("failed", 0),
            errors=errors,
            created=to_unix(row.created_at) or 0,
            updated=to_unix(row.updated_at) or 0,
            finished=to_unix(row.finished_at),
        )
