"""Bulk re-scoring runs: the record, the selection and its paging, and progress.

A run selects the account's analyses (one mode) created in [since, until), optionally of one agent and
status, as they were when it started (``until`` is never after its creation). It pages through them in
(created_at, id) order, keeping its place in ``cursor_*``; each page's rescores and the new cursor are
written in one transaction, and a run holds at most one rescore per analysis
(``uq_rescores_run_analysis``), so a run that crashed or was stopped resumes where it stopped and never
re-scores an analysis twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from callcov.kit.time import utcnow
from callcov.models import Analysis, Rescore, RescoreRun
from callcov.rescores.schemas import RescoreRunPublic, RunError

MAX_ERRORS_SHOWN = 100


def _selection(run: RescoreRun) -> SelectOfScalar[Analysis]:
    sel = run.selection
    query = select(Analysis).where(
        Analysis.user_id == run.user_id,
        Analysis.livemode == run.livemode,
        col(Analysis.created_at) < datetime.fromtimestamp(sel["until"], UTC),
    )
    if sel.get("since") is not None:
        query = query.where(col(Analysis.created_at) >= datetime.fromtimestamp(sel["since"], UTC))
    if sel.get("agent_id"):
        query = query.where(Analysis.agent_id == sel["agent_id"])
    statuses = sel.get("statuses") or ["completed"]
    return query.where(col(Analysis.status).in_(statuses))


def new_run(
    scope: tuple[uuid.UUID, bool],
    rubric: tuple[str, str],
    *,
    since: datetime | None,
    until: datetime | None,
    agent_id: str | None,
    statuses: list[str],
    retranscribe: bool,
    webhook: bool,
) -> RescoreRun:
    now = utcnow()
    end = min(until, now) if until is not None else now
    selection: dict[str, Any] = {
        "since": since.timestamp() if since is not None else None,
        "until": end.timestamp(),
        "agent_id": agent_id,
        "statuses": statuses,
    }
    return RescoreRun(
        user_id=scope[0],
        livemode=scope[1],
        rubric_id=rubric[0],
        rubric_version=rubric[1],
        selection=selection,
        retranscribe=retranscribe,
        webhook=webhook,
        created_at=now,
        updated_at=now,
    )


async def count_selected(session: AsyncSession, run: RescoreRun) -> int:
    return int((await session.exec(select(func.count()).select_from(_selection(run).subquery()))).one())


async def next_page(session: AsyncSession, run: RescoreRun, limit: int) -> list[Analysis]:
    """The next ``limit`` selected analyses after the run's cursor."""
    query = _selection(run)
    if run.cursor_created_at is not None and run.cursor_id is not None:
        query = query.where(
            or_(
                col(Analysis.created_at) > run.cursor_created_at,
                and_(col(Analysis.created_at) == run.cursor_created_at, col(Analysis.id) > run.cursor_id),
            )
        )
    rows = await session.exec(query.order_by(col(Analysis.created_at), col(Analysis.id)).limit(limit))
    return list(rows.all())


async def counts(session: AsyncSession, run_id: uuid.UUID) -> dict[str, int]:
    """The run's rescores by status."""
    rows = await session.exec(
        select(Rescore.status, func.count()).where(Rescore.run_id == run_id).group_by(Rescore.status)
    )
    return {status: int(n) for status, n in rows.all()}


async def errors(session: AsyncSession, run_id: uuid.UUID) -> list[RunError]:
    rows = await session.exec(
        select(Rescore)
        .where(Rescore.run_id == run_id, Rescore.status == "failed")
        .order_by(col(Rescore.completed_at), col(Rescore.id))
        .limit(MAX_ERRORS_SHOWN)
    )
    return [RunError(analysis_id=r.analysis_id, rescore_id=r.id, message=r.error_message) for r in rows.all()]


async def public(session: AsyncSession, run: RescoreRun) -> RescoreRunPublic:
    return RescoreRunPublic.of(run, await counts(session, run.id), await errors(session, run.id))


async def get(session: AsyncSession, scope: tuple[uuid.UUID, bool], run_id: uuid.UUID) -> RescoreRun | None:
    row = await session.get(RescoreRun, run_id)
    return row if row is not None and (row.user_id, row.livemode) == scope else None
