"""/analysis: read analyses (submission arrives with the analysis pipeline)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from callcov.analyses import repository
from callcov.analyses.schemas import AnalysisPublic, Status
from callcov.auth.deps import AnyPrincipal
from callcov.db import SessionDep
from callcov.errors import NotFound, Unauthorized
from callcov.kit.pagination import Page, PageDep

router = APIRouter(prefix="/analysis", tags=["analysis"], responses={401: Unauthorized.schema()})


class AnalysisNotFound(NotFound):
    default_message = "Analysis not found"


@router.get("")
async def list_analyses(
    principal: AnyPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[Status | None, Query(description="processing, completed or failed")] = None,
    status_filter: Annotated[Status | None, Query(description="Alias of `status`.")] = None,
    agent_id: Annotated[str | None, Query(max_length=255)] = None,
    contact_id: Annotated[str | None, Query(max_length=255)] = None,
    search: Annotated[
        str | None, Query(max_length=255, description="Substring of agent or contact id.")
    ] = None,
    created_gte: Annotated[int | None, Query(ge=0, le=2**33, description="Unix seconds.")] = None,
    created_lte: Annotated[int | None, Query(ge=0, le=2**33, description="Unix seconds.")] = None,
) -> Page[AnalysisPublic]:
    filters = repository.AnalysisFilters(
        status=status or status_filter,
        agent_id=agent_id,
        contact_id=contact_id,
        search=search,
        created_gte=created_gte,
        created_lte=created_lte,
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
