"""Results versions: every completed re-scoring adds one; ``analyses.results`` holds the newest.

Version 1 is the submission's. It is written (from the analysis row) by the first re-scoring that
completes; until then the history is the analysis row alone, so the submission path stays as it was."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.kit.pagination import PageParams
from callcov.models import Analysis, AnalysisResult, Rescore


def _submission_version(analysis: Analysis) -> AnalysisResult:
    return AnalysisResult(
        analysis_id=analysis.id,
        version=1,
        rubric_id=analysis.rubric_id,
        rubric_version=analysis.rubric_version,
        results=analysis.results,
        created_at=analysis.completed_at or analysis.created_at,
    )


async def add_version(
    session: AsyncSession, analysis: Analysis, rescore: Rescore, results: dict[str, object]
) -> int:
    """Add ``results`` as the analysis' next version (writing the submission's version 1 first, if
    it had results); its number. The caller holds the analysis row's lock and commits."""
    latest = (
        await session.exec(
            select(func.max(AnalysisResult.version)).where(AnalysisResult.analysis_id == analysis.id)
        )
    ).one()
    latest = int(latest or 0)
    if latest == 0 and analysis.results is not None:
        session.add(_submission_version(analysis))
        latest = 1
    number = latest + 1
    session.add(
        AnalysisResult(
            analysis_id=analysis.id,
            version=number,
            rubric_id=rescore.rubric_id,
            rubric_version=rescore.rubric_version,
            rescore_id=rescore.id,
            results=results,
        )
    )
    return number


async def page(
    session: AsyncSession, analysis: Analysis, params: PageParams
) -> tuple[list[AnalysisResult], int]:
    """The analysis' results versions, newest first."""
    where = col(AnalysisResult.analysis_id) == analysis.id
    total = (await session.exec(select(func.count()).select_from(AnalysisResult).where(where))).one()
    if not total:
        only = [_submission_version(analysis)] if analysis.results is not None else []
        return only[params.skip : params.skip + params.limit], len(only)
    rows = await session.exec(
        select(AnalysisResult)
        .where(where)
        .order_by(col(AnalysisResult.version).desc())
        .offset(params.skip)
        .limit(params.limit)
    )
    return list(rows.all()), int(total)


async def get_rescore(
    session: AsyncSession, scope: tuple[uuid.UUID, bool], rescore_id: uuid.UUID
) -> Rescore | None:
    row = await session.get(Rescore, rescore_id)
    return row if row is not None and (row.user_id, row.livemode) == scope else None
