"""Analysis queries. Every one is scoped to the caller's account and mode: test and live never mix."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from callcov.auth.principal import Principal
from callcov.kit.pagination import PageParams
from callcov.models import Analysis


@dataclass(frozen=True)
class AnalysisFilters:
    status: str | None = None
    agent_id: str | None = None
    contact_id: str | None = None
    search: str | None = None
    created_gte: int | None = None
    created_lte: int | None = None
    failed_check: str | None = None


def scoped(principal: Principal) -> SelectOfScalar[Analysis]:
    return select(Analysis).where(
        Analysis.user_id == principal.account_id, Analysis.livemode == principal.livemode
    )


def _filtered(query: SelectOfScalar[Analysis], filters: AnalysisFilters) -> SelectOfScalar[Analysis]:
    if filters.status:
        query = query.where(Analysis.status == filters.status)
    if filters.agent_id:
        query = query.where(Analysis.agent_id == filters.agent_id)
    if filters.contact_id:
        query = query.where(Analysis.contact_id == filters.contact_id)
    if filters.search:
        pattern = f"%{filters.search.lower()}%"
        query = query.where(
            or_(func.lower(Analysis.agent_id).like(pattern), func.lower(Analysis.contact_id).like(pattern))
        )
    if filters.failed_check:
        query = query.where(col(Analysis.failed_checks).contains(f",{filters.failed_check},"))
    if filters.created_gte is not None:
        query = query.where(Analysis.created_at >= datetime.fromtimestamp(filters.created_gte, UTC))
    if filters.created_lte is not None:
        query = query.where(Analysis.created_at < datetime.fromtimestamp(filters.created_lte + 1, UTC))
    return query


async def get(session: AsyncSession, principal: Principal, analysis_id: uuid.UUID) -> Analysis | None:
    return (await session.exec(scoped(principal).where(Analysis.id == analysis_id))).first()


async def list_page(
    session: AsyncSession, principal: Principal, filters: AnalysisFilters, page: PageParams
) -> tuple[list[Analysis], int]:
    query = _filtered(scoped(principal), filters)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(Analysis.created_at).desc(), col(Analysis.id).desc())
        .offset(page.skip)
        .limit(page.limit)
    )
    return list(rows.all()), total
