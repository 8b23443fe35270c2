"""The durable job queue on PostgreSQL (and SQLite): transactional enqueue, exclusive claims with a
lease, re-claim after a crash, backoff and giving up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import Settings
from callcov.db import create_engine, create_sessionmaker, run_migrations
from callcov.kit.time import utcnow
from callcov.models import Job
from callcov.worker import queue


@pytest_asyncio.fixture(params=["postgresql", "sqlite"])
async def sessionmaker(
    request: pytest.FixtureRequest,
    settings_factory,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "postgresql":
        settings = settings_factory()
    else:
        settings = Settings(environment="testing", data_dir=tmp_path)
        run_migrations(settings)
    engine = create_engine(settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


KIND = "test-job"


async def add_job(sessionmaker: async_sessionmaker[AsyncSession], **fields: object) -> uuid.UUID:
    kind = f"{KIND}-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session:
        job = queue.enqueue(session, kind, {"n": 1})
        for name, value in fields.items():
            setattr(job, name, value)
        await session.commit()
        return job.id, kind  # type: ignore[return-value]


@pytest.mark.asyncio
async def test_enqueue_belongs_to_the_transaction(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    kind = f"{KIND}-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session:
        queue.enqueue(session, kind, {"n": 1})
        await session.rollback()
    assert await queue.claim(sessionmaker, worker_id="w", kinds=[kind], lease_s=30, limit=5) == []


@pytest.mark.asyncio
async def test_claim_is_exclusive_and_leased(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    job_id, kind = await add_job(sessionmaker)
    results = await asyncio.gather(
        *(queue.claim(sessionmaker, worker_id=f"w{i}", kinds=[kind], lease_s=30, limit=5) for i in range(5))
    )
    winners = [jobs for jobs in results if jobs]
    assert len(winners) == 1 and winners[0][0].id == job_id and winners[0][0].attempts == 1
    worker = winners[0][0].locked_by
    assert await queue.complete(sessionmaker, job_id, "someone-else") is False
    assert await queue.complete(sessionmaker, job_id, worker) is True
    assert await queue.claim(sessionmaker, worker_id="w", kinds=[kind], lease_s=30, limit=5) == []


@pytest.mark.asyncio
async def test_claim_takes_no_more_than_its_limit(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """A runner's free slots bound its claim: PostgreSQL may run an ``IN (SELECT ... LIMIT n FOR UPDATE
    SKIP LOCKED)`` subquery more than once and update more than n rows (found: 3 claimed for 2 slots)."""
    kind = f"{KIND}-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session:
        for n in range(5):
            queue.enqueue(session, kind, {"n": n})
        await session.commit()
    claims = [
        await queue.claim(sessionmaker, worker_id=f"w{i}", kinds=[kind], lease_s=30, limit=2)
        for i in range(3)
    ]
    assert [len(jobs) for jobs in claims] == [2, 2, 1]
    assert len({job.id for jobs in claims for job in jobs}) == 5


@pytest.mark.asyncio
async def test_expired_lease_is_claimed_again(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    job_id, kind = await add_job(sessionmaker)
    [job] = await queue.claim(sessionmaker, worker_id="crashed", kinds=[kind], lease_s=30, limit=1)
    assert await queue.claim(sessionmaker, worker_id="other", kinds=[kind], lease_s=30, limit=1) == []
    async with sessionmaker() as session:
        await session.exec(
            update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1))
        )  # type: ignore[arg-type]
        await session.commit()
    [again] = await queue.claim(sessionmaker, worker_id="other", kinds=[kind], lease_s=30, limit=1)
    assert again.id == job_id and again.attempts == 2 and again.locked_by == "other"
    # The crashed worker's late completion is refused: the job is no longer its own.
    assert await queue.complete(sessionmaker, job_id, "crashed") is False


@pytest.mark.asyncio
async def test_retry_backs_off_then_gives_up(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    job_id, kind = await add_job(sessionmaker, max_attempts=2)
    [job] = await queue.claim(sessionmaker, worker_id="w", kinds=[kind], lease_s=30, limit=1)
    assert await queue.retry_later(sessionmaker, job, "w", "busy") is True
    assert await queue.claim(sessionmaker, worker_id="w", kinds=[kind], lease_s=30, limit=1) == []
    async with sessionmaker() as session:
        row = await session.get(Job, job_id)
        assert row is not None and row.status == "queued" and row.last_error == "busy"
        assert row.run_after > utcnow() + timedelta(seconds=1)
        row.run_after = utcnow()
        session.add(row)
        await session.commit()
    [job] = await queue.claim(sessionmaker, worker_id="w", kinds=[kind], lease_s=30, limit=1)
    assert await queue.retry_later(sessionmaker, job, "w", "still busy") is False
    async with sessionmaker() as session:
        row = await session.get(Job, job_id)
        assert row is not None and row.status == "failed" and row.finished_at is not None


def test_backoff_grows_and_is_capped() -> None:
    waits = [queue.backoff_s(n) for n in range(1, 12)]
    assert 2 <= waits[0] <= 4 and waits[3] > waits[0] and max(waits) <= 302
