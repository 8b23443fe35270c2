"""The durable job queue in the database.

``enqueue`` adds a job inside the caller's transaction (so the job exists exactly when the change
that needs it commits). ``claim`` takes due jobs with a lease, atomically: ``FOR UPDATE SKIP LOCKED``
on PostgreSQL, a single ``UPDATE … RETURNING`` on SQLite (whose writers are serialised). A job whose
lease ran out (its worker crashed) is due again, and that claim counts a crash (``Job.crashes``): the
runner ends a job whose crashes or attempts are spent instead of running it. Each step after
``enqueue`` is its own transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import tenacity
from sqlalchemy import and_, case, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import WorkerSettings
from callcov.kit.time import utcnow
from callcov.models import Job


def enqueue(session: AsyncSession, kind: str, payload: dict[str, Any], *, max_attempts: int = 8) -> Job:
    job = Job(kind=kind, payload=payload, max_attempts=max_attempts)
    session.add(job)
    return job


def backoff_s(attempt: int, settings: WorkerSettings | None = None) -> float:
    """The wait after attempt ``attempt`` failed transiently: exponential from
    ``retry_initial_s``, capped at ``retry_max_wait_s``, with up to 2 s of jitter (computed by
    tenacity; the queue stores the time of the next attempt)."""
    settings = settings or WorkerSettings()
    wait = tenacity.wait_exponential_jitter(
        multiplier=settings.retry_initial_s, max=settings.retry_max_wait_s, jitter=2
    )
    state = tenacity.RetryCallState(retry_object=tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return float(wait(state))


def _due(now: Any) -> Any:
    return or_(
        and_(col(Job.status) == "queued", col(Job.run_after) <= now),
        and_(col(Job.status) == "running", col(Job.lease_until) < now),
    )


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    worker_id: str,
    kinds: Sequence[str],
    lease_s: float,
    limit: int,
) -> list[Job]:
    """Lease up to ``limit`` due jobs of ``kinds``. The ids are picked first (locked, skipping rows
    another claim holds, on PostgreSQL) and then updated, in one transaction: an ``UPDATE ... WHERE id
    IN (SELECT ... LIMIT n)`` lets PostgreSQL run the subquery more than once and take more than n."""
    async with sessionmaker() as session:
        now = utcnow()
        candidates = (
            select(Job.id)
            .where(_due(now), col(Job.kind).in_(kinds))
            .order_by(col(Job.run_after))
            .limit(limit)
        )
        if session.bind.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list((await session.exec(candidates)).all())
        if not ids:
            await session.rollback()
            return []
        claimed = await session.exec(
            update(Job)
            .where(col(Job.id).in_(ids), _due(now))  # due again: SQLite picks without a lock
            .values(
                status="running",
                attempts=Job.attempts + 1,
                # Still running means its lease ran out: the worker died with it (a crash).
                crashes=case((col(Job.status) == "running", Job.crashes + 1), else_=Job.crashes),
                lease_until=now + timedelta(seconds=lease_s),
                locked_by=worker_id,
                updated_at=now,
            )
            .returning(Job)
        )
        jobs = [
            row[0] if isinstance(row, tuple) or hasattr(row, "_mapping") else row for row in claimed.all()
        ]
        await session.commit()
        return jobs


async def extend_lease(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, worker_id: str, lease_s: float
) -> bool:
    """Keep a long job's lease alive; False if the job is no longer ours."""
    return await _update_owned(
        sessionmaker, job_id, worker_id, lease_until=utcnow() + timedelta(seconds=lease_s)
    )


async def complete(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, worker_id: str) -> bool:
    async with sessionmaker() as session:
        done = await finish(session, job_id, worker_id)
        await session.commit()
    return done


async def retry_later(
    sessionmaker: async_sessionmaker[AsyncSession],
    job: Job,
    worker_id: str,
    error: str,
    *,
    crashed: bool = False,
    settings: WorkerSettings | None = None,
) -> bool:
    """Reschedule after a transient failure (``crashed``: one that counts a crash), or give up
    (status ``failed``) after ``max_attempts``. Returns True when the job will run again."""
    if job.attempts >= job.max_attempts:
        await fail(sessionmaker, job.id, worker_id, error)
        return False
    run_after = utcnow() + timedelta(seconds=backoff_s(job.attempts, settings))
    await _update_owned(
        sessionmaker,
        job.id,
        worker_id,
        status="queued",
        run_after=run_after,
        lease_until=None,
        last_error=error[:2000],
        **({"crashes": Job.crashes + 1} if crashed else {}),
    )
    return True


async def holder(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> str | None:
    """The worker that last claimed the job (None if none holds it)."""
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        return job.locked_by if job is not None else None


async def release(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, worker_id: str) -> bool:
    """Hand a running job back unfinished (its worker is shutting down): due at once, and the
    attempt it was on does not count. False if the job is no longer ours."""
    return await _update_owned(
        sessionmaker,
        job_id,
        worker_id,
        status="queued",
        run_after=utcnow(),
        lease_until=None,
        locked_by=None,
        attempts=Job.attempts - 1,
    )


async def reschedule(session: AsyncSession, job_id: uuid.UUID, worker_id: str, run_after: datetime) -> bool:
    """Put a running job back for ``run_after``, inside the caller's transaction (the handler
    records why in the same commit). False if the job is no longer ours."""
    return await _settle(session, job_id, worker_id, status="queued", run_after=run_after, lease_until=None)


async def finish(session: AsyncSession, job_id: uuid.UUID, worker_id: str) -> bool:
    """Mark a running job done inside the caller's transaction. False if it is no longer ours."""
    return await _settle(session, job_id, worker_id, status="done", finished_at=utcnow(), lease_until=None)


async def _settle(session: AsyncSession, job_id: uuid.UUID, worker_id: str, **values: Any) -> bool:
    """Change a job that is still running under ``worker_id``; False if it is no longer ours."""
    result = await session.exec(
        update(Job)
        .where(col(Job.id) == job_id, col(Job.locked_by) == worker_id, col(Job.status) == "running")
        .values(updated_at=utcnow(), **values)
    )
    return bool(result.rowcount == 1)


async def fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    worker_id: str,
    error: str,
    *,
    crashed: bool = False,
) -> bool:
    """End a running job for good (``crashed``: its last attempt counts a crash)."""
    return await _update_owned(
        sessionmaker,
        job_id,
        worker_id,
        status="failed",
        finished_at=utcnow(),
        lease_until=None,
        last_error=error[:2000],
        **({"crashes": Job.crashes + 1} if crashed else {}),
    )


async def _update_owned(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, worker_id: str, **values: Any
) -> bool:
    async with sessionmaker() as session:
        settled = await _settle(session, job_id, worker_id, **values)
        await session.commit()
    return settled
