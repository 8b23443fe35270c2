"""Re-scoring: ``POST /analysis/{id}/rescore``, ``GET /rescores/{id}``, the results history
``GET /analysis/{id}/results`` and the bulk run record ``GET /rescore-runs/{id}``."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from callcov.analyses import repository
from callcov.analyses.errors import AnalysisNotFound
from callcov.auth.deps import AnyPrincipal
from callcov.billing.errors import UsageLimitExceeded
from callcov.db import SessionDep
from callcov.errors import ErrorBody, Unauthorized
from callcov.kit.pagination import Page, PageDep
from callcov.rescores import results, runs, service
from callcov.rescores.errors import NotRescorable, RescoreNotFound, RescoreRunNotFound
from callcov.rescores.schemas import RescoreCreate, RescorePublic, RescoreRunPublic, ResultsVersion
from callcov.state import StateDep

router = APIRouter(tags=["rescoring"], responses={401: Unauthorized.schema()})

RESCORE_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "Unknown or archived rubric; webhook without a URL"},
    402: UsageLimitExceeded.schema(),
    404: AnalysisNotFound.schema(),
    409: NotRescorable.schema(),
}


@router.post("/analysis/{analysis_id}/rescore", status_code=202, responses=RESCORE_ERRORS)
async def rescore_analysis(
    analysis_id: uuid.UUID, body: RescoreCreate, principal: AnyPrincipal, session: SessionDep, state: StateDep
) -> RescorePublic:
    """Re-score the analysis' stored transcript (or, with ``retranscribe``, its recording) with a
    rubric. The analysis keeps its results until the new version is ready."""
    analysis = await repository.get(session, principal, analysis_id)
    if analysis is None:
        raise AnalysisNotFound()
    rubric_id, version = await service.pin_rubric(
        session, (principal.account_id, principal.livemode), body.rubric
    )
    ask = service.Ask(rubric_id, version, webhook=body.webhook, retranscribe=body.retranscribe)
    settings = state.settings
    rescore = await service.start(
        session,
        principal,
        analysis,
        ask,
        billing=settings.billing,
        max_attempts=settings.worker.max_attempts,
        waker=state.waker,
    )
    return RescorePublic.of(rescore)


@router.get("/rescores/{rescore_id}", responses={404: RescoreNotFound.schema()})
async def get_rescore(rescore_id: uuid.UUID, principal: AnyPrincipal, session: SessionDep) -> RescorePublic:
    row = await results.get_rescore(session, (principal.account_id, principal.livemode), rescore_id)
    if row is None:
        raise RescoreNotFound()
    return RescorePublic.of(row)


@router.get("/analysis/{analysis_id}/results", responses={404: AnalysisNotFound.schema()})
async def list_results(
    analysis_id: uuid.UUID, principal: AnyPrincipal, session: SessionDep, page: PageDep
) -> Page[ResultsVersion]:
    """Every results version of the analysis, newest first (version 1 is the submission's)."""
    analysis = await repository.get(session, principal, analysis_id)
    if analysis is None:
        raise AnalysisNotFound()
    rows, total = await results.page(session, analysis, page)
    return Page[ResultsVersion].build([ResultsVersion.of(row) for row in rows], total, page)


@router.get("/rescore-runs/{run_id}", responses={404: RescoreRunNotFound.schema()})
async def get_rescore_run(
    run_id: uuid.UUID, principal: AnyPrincipal, session: SessionDep
) -> RescoreRunPublic:
    """A bulk re-scoring run (``python -m callcov.rescores.bulk``): selected, done, failed, errors."""
    run = await runs.get(session, (principal.account_id, principal.livemode), run_id)
    if run is None:
        raise RescoreRunNotFound()
    return await runs.public(session, run)
