"""Jobs that crash their worker, and workers that lose their lease (issue 12, findings 4, 8 and 9):
a lease that ran out counts as a crash of that attempt, a small crash budget ends a job that keeps
killing its workers, a heartbeat that cannot extend the lease stops the handler before another
worker takes the job, and transient failures are retried for about an hour."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import Settings, WorkerSettings
from callcov.db import create_engine, create_sessionmaker
from callcov.kit.time import utcnow
from callcov.models import Job
from callcov.worker import queue
from callcov.worker.runner import Runner, WorkerCrashed

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def sessionmaker(settings_factory) -> AsyncIterator[async_sessionmaker[AsyncSession]]:  # type: ignore[no-untyped-def]
    engine = create_engine(settings_factory())
    yield create_sessionmaker(engine)
    await engine.dispose()


async def add_job(sessionmaker: async_sessionmaker[AsyncSession], **fields: object) -> tuple[uuid.UUID, str]:
    kind = f"crash-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session:
        job = queue.enqueue(session, kind, {"n": 1})
        for name, value in fields.items():
            setattr(job, name, value)
        await session.commit()
        return job.id, kind


async def expire(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
    """The worker holding the job died: its lease runs out."""
    async with sessionmaker() as session:
        await session.exec(
            update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1))  # type: ignore[arg-type]
        )
        await session.commit()


async def row(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    return job


async def crash_once(sessionmaker: async_sessionmaker[AsyncSession], kind: str, job_id: uuid.UUID) -> Job:
    """A worker claims the job and dies with it."""
    [job] = await queue.claim(
        sessionmaker, worker_id=f"dead-{uuid.uuid4().hex[:4]}", kinds=[kind], lease_s=30, limit=1
    )
    await expire(sessionmaker, job_id)
    return job


class Recorder:
    """A handler and give-up hook that record what they were called with."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.ran: list[uuid.UUID] = []
        self.gave_up: list[tuple[uuid.UUID, str]] = []

    async def handler(self, job: Job) -> None:
        self.ran.append(job.id)
        if self.error is not None:
            raise self.error

    async def give_up(self, job: Job, reason: str) -> None:
        self.gave_up.append((job.id, reason))


def runner_of(
    sessionmaker: async_sessionmaker[AsyncSession], kind: str, recorder: Recorder, **worker: float
) -> Runner:
    settings = WorkerSettings(**{"concurrency": 2, "lease_s": 30, "poll_interval_s": 0.05, **worker})
    return Runner(
        sessionmaker,
        settings,
        {kind: recorder.handler},
        on_give_up=recorder.give_up,
        worker_id=f"w-{uuid.uuid4().hex[:6]}",
    )


async def test_a_reclaimed_lease_counts_a_crash(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    job_id, kind = await add_job(sessionmaker)
    await crash_once(sessionmaker, kind, job_id)
    [again] = await queue.claim(sessionmaker, worker_id="next", kinds=[kind], lease_s=30, limit=1)
    assert (again.attempts, again.crashes) == (2, 1)


async def test_a_job_that_keeps_killing_its_workers_ends(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """Two workers died running it: the third claim gives up instead of running it again."""
    job_id, kind = await add_job(sessionmaker, max_attempts=20)
    await crash_once(sessionmaker, kind, job_id)
    recorder = Recorder()
    await crash_once(sessionmaker, kind, job_id)
    await runner_of(sessionmaker, kind, recorder, max_crashes=2).drain()
    assert recorder.ran == []
    assert [job for job, _ in recorder.gave_up] == [job_id]
    assert "crash" in recorder.gave_up[0][1]
    job = await row(sessionmaker, job_id)
    assert (job.status, job.crashes) == ("failed", 2) and job.finished_at is not None
    # And it is never claimed again.
    assert await queue.claim(sessionmaker, worker_id="w", kinds=[kind], lease_s=30, limit=1) == []


async def test_one_crash_is_forgiven(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    job_id, kind = await add_job(sessionmaker)
    await crash_once(sessionmaker, kind, job_id)
    recorder = Recorder()
    await runner_of(sessionmaker, kind, recorder, max_crashes=2).drain()
    assert recorder.ran == [job_id] and recorder.gave_up == []
    assert (await row(sessionmaker, job_id)).status == "done"


async def test_a_crash_on_the_last_attempt_ends_the_job(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    job_id, kind = await add_job(sessionmaker, max_attempts=1)
    await crash_once(sessionmaker, kind, job_id)
    recorder = Recorder()
    await runner_of(sessionmaker, kind, recorder, max_crashes=5).drain()
    assert recorder.ran == [] and [job for job, _ in recorder.gave_up] == [job_id]
    assert (await row(sessionmaker, job_id)).status == "failed"


async def test_a_model_replica_that_dies_counts_against_the_crash_budget(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    job_id, kind = await add_job(sessionmaker, max_attempts=20)
    recorder = Recorder(WorkerCrashed("whisper replica died"))
    runner = runner_of(sessionmaker, kind, recorder, max_crashes=2)
    await runner.drain()
    job = await row(sessionmaker, job_id)
    assert (job.status, job.crashes, job.attempts) == ("queued", 1, 1)
    async with sessionmaker() as session:
        await session.exec(update(Job).where(Job.id == job_id).values(run_after=utcnow()))  # type: ignore[arg-type]
        await session.commit()
    await runner.drain()
    job = await row(sessionmaker, job_id)
    assert (job.status, job.crashes) == ("failed", 2)
    assert recorder.ran == [job_id, job_id] and [j for j, _ in recorder.gave_up] == [job_id]


class Blocked:
    """A handler that runs until cancelled, and says whether it was."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.cancelled_at: datetime | None = None

    async def __call__(self, job: Job) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled_at = utcnow()
            self.cancelled.set()
            raise


async def test_a_heartbeat_that_cannot_reach_the_database_stops_the_handler(
    sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The lease cannot be extended (a DB error on every try): the handler is cancelled before the
    lease runs out, so it never runs beside the worker that takes the job over."""
    job_id, kind = await add_job(sessionmaker)

    async def db_down(*args: object, **kwargs: object) -> bool:
        raise OperationalError(
            "UPDATE jobs SET lease_until=...", {}, ConnectionError("server closed the connection")
        )

    monkeypatch.setattr(queue, "extend_lease", db_down)
    handler = Blocked()
    lease_s = 2.0
    runner = Runner(
        sessionmaker, WorkerSettings(concurrency=1, lease_s=lease_s), {kind: handler}, worker_id="w-heartbeat"
    )
    await runner.run_once()
    async with asyncio.timeout(5):
        await handler.cancelled.wait()
    async with asyncio.timeout(5):
        while runner.in_flight:
            await asyncio.sleep(0.01)
    job = await row(sessionmaker, job_id)
    # Stopped while the lease (the one the claim took: it was never extended) still held.
    assert handler.cancelled_at is not None and job.lease_until is not None
    assert handler.cancelled_at < job.lease_until
    # Left as it is: the lease runs out and another worker takes the job, counting a crash.
    assert (job.status, job.locked_by) == ("running", "w-heartbeat")
    await asyncio.sleep(max(0.0, (job.lease_until - utcnow()).total_seconds()) + 0.05)  # type: ignore[operator]
    [again] = await queue.claim(sessionmaker, worker_id="next", kinds=[kind], lease_s=30, limit=1)
    assert again.crashes == 1


async def test_a_passing_db_error_does_not_stop_the_handler(
    sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """One failed extension is retried well within the lease: the handler goes on."""
    job_id, kind = await add_job(sessionmaker)
    real = queue.extend_lease
    failures = [1]

    async def flaky(*args: object, **kwargs: object) -> bool:
        if failures:
            failures.pop()
            raise OperationalError("UPDATE jobs", {}, ConnectionError("restarting"))
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(queue, "extend_lease", flaky)
    handler = Blocked()
    runner = Runner(
        sessionmaker, WorkerSettings(concurrency=1, lease_s=1.2), {kind: handler}, worker_id="w-flaky"
    )
    stop = asyncio.Event()
    await runner.run_once()
    await asyncio.sleep(2.0)  # past the first lease: it was extended after the failure
    assert not handler.cancelled.is_set() and not failures
    assert (await row(sessionmaker, job_id)).locked_by == "w-flaky"
    await runner.shutdown(stop, grace_s=0)


async def test_a_job_taken_over_by_another_worker_stops_the_handler(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """The event loop stalled past the lease and another worker took the job: the heartbeat finds
    the job is no longer ours and stops the handler."""
    job_id, kind = await add_job(sessionmaker)
    handler = Blocked()
    runner = Runner(
        sessionmaker, WorkerSettings(concurrency=1, lease_s=0.9), {kind: handler}, worker_id="w-slow"
    )
    await runner.run_once()
    await handler.started.wait()
    await expire(sessionmaker, job_id)
    [taken] = await queue.claim(sessionmaker, worker_id="w-other", kinds=[kind], lease_s=30, limit=1)
    async with asyncio.timeout(5):
        await handler.cancelled.wait()
    assert (await row(sessionmaker, job_id)).locked_by == "w-other" and taken.crashes == 1


async def test_transient_failures_are_retried_for_about_an_hour() -> None:
    """The default schedule rides out an outage of the transcriber or the LLM of half an hour and
    more: the waits between the attempts add up to about an hour, none longer than 5 minutes."""
    worker = Settings().worker
    waits = [queue.backoff_s(n, worker) for n in range(1, worker.max_attempts)]
    assert all(b >= a for a, b in zip(waits, waits[1:], strict=False))
    assert max(waits) <= worker.retry_max_wait_s + 2
    assert 45 * 60 <= sum(waits) <= 75 * 60
    assert waits[0] <= 5
