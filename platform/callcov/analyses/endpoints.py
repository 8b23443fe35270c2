"""/analysis: submit calls and read analyses (and the /calls/analyze alias of submission)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from callcov.analyses import repository, service
from callcov.analyses.errors import AnalysisNotFound, AudioTooLong, FileTooLarge, InvalidFileFormat
from callcov.analyses.schemas import AnalysisPublic, Status
from callcov.analyses.submission import SubmissionFields, read_submission
from callcov.auth.deps import AnyPrincipal
from callcov.billing.errors import UsageLimitExceeded
from callcov.db import SessionDep
from callcov.errors import ErrorBody, Unauthorized
from callcov.kit.pagination import Page, PageDep
from callcov.kit.text import SafeStr
from callcov.scoring.pii import POLICIES
from callcov.scoring.verdicts import REQUIREMENTS
from callcov.state import StateDep

Requirement = Literal[REQUIREMENTS]  # type: ignore[valid-type]

router = APIRouter(prefix="/analysis", tags=["analysis"], responses={401: Unauthorized.schema()})


@router.get("")
async def list_analyses(
    principal: AnyPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[Status | None, Query(description="processing, completed or failed")] = None,
    status_filter: Annotated[Status | None, Query(description="Alias of `status`.")] = None,
    agent_id: Annotated[SafeStr | None, Query(max_length=255)] = None,
    contact_id: Annotated[SafeStr | None, Query(max_length=255)] = None,
    search: Annotated[
        SafeStr | None, Query(max_length=255, description="Substring of agent or contact id.")
    ] = None,
    created_gte: Annotated[int | None, Query(ge=0, le=2**33, description="Unix seconds.")] = None,
    created_lte: Annotated[int | None, Query(ge=0, le=2**33, description="Unix seconds.")] = None,
    failed_check: Annotated[
        Requirement | None,
        Query(
            description="Only calls that failed this compliance requirement (`results.compliance.*.verdict`)."
        ),
    ] = None,
) -> Page[AnalysisPublic]:
    filters = repository.AnalysisFilters(
        status=status or status_filter,
        agent_id=agent_id,
        contact_id=contact_id,
        search=search,
        created_gte=created_gte,
        created_lte=created_lte,
        failed_check=failed_check,
    )
    rows, total = await repository.list_page(session, principal, filters, page)
    return Page[AnalysisPublic].build([AnalysisPublic.of(row) for row in rows], total, page)


@router.get("/{analysis_id}", responses={404: AnalysisNotFound.schema()})
async def get_analysis(
    analysis_id: uuid.UUID, principal: AnyPrincipal, session: SessionDep
) -> AnalysisPublic:
    row = await repository.get(session, principal, analysis_id)
    if row is None:
        raise AnalysisNotFound()
    return AnalysisPublic.of(row)


SUBMISSION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["agent_id", "contact_id", "audio_file"],
                    "properties": {
                        "audio_file": {"type": "string", "format": "binary"},
                        "agent_id": {"type": "string", "minLength": 1, "maxLength": 255},
                        "contact_id": {"type": "string", "minLength": 1, "maxLength": 255},
                        "webhook_url": {"type": "string", "maxLength": 2048},
                        "metadata": {"type": "string", "description": "A JSON object, as a string"},
                        "call_direction": {"type": "string", "enum": ["inbound", "outbound"]},
                        "call_timestamp": {"type": "string", "description": "ISO 8601 or Unix seconds"},
                        "language": {"type": "string"},
                        "rubric": {
                            "type": "string",
                            "description": "A built-in rubric (`default`, `default@2`) or the account's "
                            "(`rub_…`, `rub_…@3`)",
                        },
                        "redact_pii": {"type": "boolean"},
                        "redact_pii_policies": {
                            "type": "string",
                            "description": "Needs redact_pii=true. Policies as a JSON array, comma-separated, "
                            "or the field repeated: " + ", ".join(POLICIES),
                        },
                        "redact_audio": {"type": "boolean"},
                    },
                    "dependentRequired": {"redact_pii_policies": ["redact_pii"]},
                }
            },
            "application/json": {"schema": SubmissionFields.model_json_schema()},
        },
    }
}
SUBMISSION_ERRORS: dict[int | str, dict[str, object]] = {
    400: {
        "model": ErrorBody,
        "description": (
            f"{InvalidFileFormat.default_message} (invalid_file_format); {AudioTooLong.default_message} "
            "(audio_too_long); or an invalid field, e.g. a reserved metadata key, or redact_pii_policies "
            "without redact_pii: true (validation_error)"
        ),
    },
    402: UsageLimitExceeded.schema(),
    413: FileTooLarge.schema(),
    422: {"model": ErrorBody, "description": "Validation error"},
}


@router.post("", status_code=201, openapi_extra=SUBMISSION_BODY, responses=SUBMISSION_ERRORS)
async def submit_analysis(
    request: Request,
    principal: AnyPrincipal,
    session: SessionDep,
    state: StateDep,
) -> AnalysisPublic:
    """Submit a call: an uploaded ``audio_file`` (multipart) or an ``audio_url`` (JSON or form)."""
    settings = state.settings
    submission = await read_submission(
        request,
        state.storage,
        settings.storage,
        settings.network,
        max_duration_s=settings.audio.max_duration_s,
    )
    try:
        analysis = await service.create_analysis(
            session,
            principal,
            submission,
            max_attempts=settings.worker.max_attempts,
            billing=settings.billing,
            waker=state.waker,
        )
    except BaseException:
        await state.storage.delete(submission.audio.uri)
        raise
    return AnalysisPublic.of(analysis)


# The guides' path for the same operation.
calls_router = APIRouter(prefix="/calls", tags=["analysis"], responses={401: Unauthorized.schema()})
calls_router.post(
    "/analyze",
    status_code=201,
    openapi_extra=SUBMISSION_BODY,
    responses=SUBMISSION_ERRORS,
    name="analyze_call",
    description="Alias of `POST /analysis` used by the guides.",
)(submit_analysis)
