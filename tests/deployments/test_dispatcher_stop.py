"""A dispatcher replica that Serve stops (``__del__``) hands its unfinished jobs back at once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from callcov.db import create_engine, create_sessionmaker
from callcov.models import Job
from callcov.worker import queue
from callcov.worker.wiring import Handlers, TaskGroup, build_runners
from deployments import dispatcher as dispatcher_module
from deployments.dispatcher import Dispatcher

pytestmark = pytest.mark.asyncio


class Gate:
    """A handler that never finishes, recording the jobs it started."""

    def __init__(self) -> None:
        self.started: list[uuid.UUID] = []

    async def __call__(self, job: Job) -> None:
        self.started.append(job.id)
        await asyncio.Event().wait()


async def test_a_stopped_dispatcher_releases_its_running_jobs(settings_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(worker={"poll_interval_s": 0.05, "concurrency": 2})
    kind = f"stop-{uuid.uuid4().hex[:8]}"
    gate = Gate()

    def runners(
        sessionmaker: Any, settings: Any, **_: Any
    ) -> Any:  # the dispatcher's composition, one test group
        group = TaskGroup(name="test", kinds=(kind,), build=lambda _context: Handlers({kind: gate}))
        return build_runners([group], sessionmaker, settings, None, worker_id="dispatcher-test")

    monkeypatch.setattr(dispatcher_module, "build_job_runners", runners)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        ids = [queue.enqueue(session, kind, {"n": n}).id for n in range(2)]
        await session.commit()
    replica = Dispatcher.__new__(Dispatcher)
    await replica.__init__(settings, graceful_stop_s=0.1)  # type: ignore[misc]
    async with asyncio.timeout(10):
        while len(gate.started) < 2:
            await asyncio.sleep(0.02)
    await replica.__del__()
    assert all(loop.done() for loop in replica.loops)
    async with sessionmaker() as session:
        rows = [await session.get(Job, job_id) for job_id in ids]
    assert [(row.status, row.locked_by, row.attempts) for row in rows if row] == [("queued", None, 0)] * 2
    await engine.dispose()
