"""/analytics: the figures the review console charts, for API users too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from callcov.analytics import service
from callcov.analytics.schemas import AgentScorecard
from callcov.auth.deps import AnyPrincipal
from callcov.db import SessionDep
from callcov.errors import BadRequest, ErrorBody, Unauthorized
from callcov.kit.pagination import Page, PageDep
from callcov.kit.text import SafeStr
from callcov.kit.time import utcnow

router = APIRouter(prefix="/analytics", tags=["analytics"], responses={401: Unauthorized.schema()})

DEFAULT_DAYS = 30
MAX_DAYS = 366


class PeriodTooLong(BadRequest):
    code = "validation_error"
    default_message = f"The period is at most {MAX_DAYS} days, and created_gte must be before created_lte"


@router.get("/agents", responses={400: {"model": ErrorBody, "description": PeriodTooLong.default_message}})
async def agent_scorecards(
    principal: AnyPrincipal,
    session: SessionDep,
    page: PageDep,
    created_gte: Annotated[
        int | None, Query(ge=0, le=2**33, description="Unix seconds; default 30 days before the end.")
    ] = None,
    created_lte: Annotated[
        int | None, Query(ge=0, le=2**33, description="Unix seconds; default now.")
    ] = None,
    agent_id: Annotated[SafeStr | None, Query(max_length=255)] = None,
    bucket: Annotated[
        Literal["day", "week"], Query(description="The trend's step (UTC days, ISO weeks).")
    ] = "week",
) -> Page[AgentScorecard]:
    """A scorecard per agent over the period (completed calls, by creation time), in agent_id order:
    calls, minutes, the pass rate of each compliance requirement, and its trend."""
    end = datetime.fromtimestamp(created_lte + 1, UTC) if created_lte is not None else utcnow()
    start = (
        datetime.fromtimestamp(created_gte, UTC)
        if created_gte is not None
        else end - timedelta(days=DEFAULT_DAYS)
    )
    if start >= end or end - start > timedelta(days=MAX_DAYS, seconds=1):
        raise PeriodTooLong()
    query = service.Query(principal.account_id, principal.livemode, start, end, bucket, agent_id)
    items, total = await service.agent_scorecards(session, query, page)
    return Page[AgentScorecard].build(items, total, page)
