"""A runner that is shutting down (a dispatcher replica being stopped or scaled in): it stops
claiming, lets running jobs finish within a grace period, and hands back the leases of those that
did not, so another replica claims them at once and the attempt is not counted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import WorkerSettings
from callcov.db import create_engine, create_sessionmaker
from callcov.models import Job
from callcov.worker import queue
from callcov.worker.runner import Runner

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def sessionmaker(settings_factory) -> AsyncIterator[async_sessionmaker[AsyncSession]]:  # type: ignore[no-untyped-def]
    engine = create_engine(settings_factory())
    yield create_sessionmaker(engine)
    await engine.dispose()


class Gate:
    """A handler that waits for ``release`` (or forever), recording which jobs it started."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[uuid.UUID] = []

    async def __call__(self, job: Job) -> None:
        self.started.append(job.id)
        await self.release.wait()


async def add_jobs(sessionmaker: async_sessionmaker[AsyncSession], kind: str, n: int) -> list[uuid.UUID]:
    async with sessionmaker() as session:
        jobs = [queue.enqueue(session, kind, {"n": i}) for i in range(n)]
        await session.commit()
        return [job.id for job in jobs]


async def job(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with sessionmaker() as session:
        row = await session.get(Job, job_id)
    assert row is not None
    return row


def runner(
    sessionmaker: async_sessionmaker[AsyncSession], kind: str, handler: Gate, concurrency: int
) -> Runner:
    settings = WorkerSettings(concurrency=concurrency, lease_s=60, poll_interval_s=0.05)
    return Runner(sessionmaker, settings, {kind: handler}, worker_id=f"w-{uuid.uuid4().hex[:6]}")


async def test_stop_hands_back_the_leases_of_unfinished_jobs(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    kind = f"stop-{uuid.uuid4().hex[:8]}"
    ids = await add_jobs(sessionmaker, kind, 3)
    gate = Gate()
    first = runner(sessionmaker, kind, gate, concurrency=2)
    stop = asyncio.Event()
    loop = asyncio.create_task(first.run_forever(stop))
    async with asyncio.timeout(10):
        while len(gate.started) < 2:
            await asyncio.sleep(0.02)
    await first.shutdown(stop, grace_s=0.2)
    await loop
    for job_id in gate.started:
        row = await job(sessionmaker, job_id)
        # Back in the queue at once, not after the lease runs out, and the attempt does not count.
        assert (row.status, row.locked_by, row.lease_until, row.attempts) == ("queued", None, None, 0)
    # The stopped runner claimed nothing more: the third job was never started.
    assert (
        len(gate.started) == 2
        and (await job(sessionmaker, (set(ids) - set(gate.started)).pop())).attempts == 0
    )
    # Another replica picks all three up immediately.
    claimed = await queue.claim(sessionmaker, worker_id="next", kinds=[kind], lease_s=30, limit=5)
    assert {c.id for c in claimed} == set(ids)


async def test_stop_lets_jobs_that_finish_within_the_grace_period_complete(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    kind = f"stop-{uuid.uuid4().hex[:8]}"
    [job_id] = await add_jobs(sessionmaker, kind, 1)
    gate = Gate()
    first = runner(sessionmaker, kind, gate, concurrency=1)
    stop = asyncio.Event()
    loop = asyncio.create_task(first.run_forever(stop))
    async with asyncio.timeout(10):
        while not gate.started:
            await asyncio.sleep(0.02)
    asyncio.get_running_loop().call_later(0.1, gate.release.set)
    await first.shutdown(stop, grace_s=5)
    await loop
    assert (await job(sessionmaker, job_id)).status == "done"
