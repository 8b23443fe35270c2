"""The job loop: claim due jobs with a lease, run each through its kind's handler, keep the lease
alive while it runs, and record the outcome. Free of Ray: the dispatcher deployment wraps it, tests
drive it directly."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import WorkerSettings
from callcov.kit import metrics
from callcov.kit.logs import job_log_context
from callcov.models import Job
from callcov.worker import queue

logger = logging.getLogger("callcov.worker")

Handler = Callable[[Job], Awaitable[None]]


class RetryableError(Exception):
    """A transient failure: run the job again later (backoff), until max_attempts."""


class PermanentError(Exception):
    """The job can never succeed; the handler has already recorded what the client should see."""


class Settled(Exception):  # noqa: N818  (a signal, not an error)
    """The handler has already settled the job (``queue.finish`` or ``queue.reschedule``) in the same
    transaction as its own bookkeeping: the runner leaves the job alone."""


class Runner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: WorkerSettings,
        handlers: Mapping[str, Handler],
        *,
        on_give_up: Callable[[Job, str], Awaitable[None]] | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.handlers = dict(handlers)
        self.on_give_up = on_give_up
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.wake = asyncio.Event()
        self._running: dict[asyncio.Task[None], Job] = {}

    async def run_once(self) -> int:
        """Claim what fits in the free slots and start it; returns how many jobs were started."""
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            return 0
        jobs = await queue.claim(
            self.sessionmaker,
            worker_id=self.worker_id,
            kinds=list(self.handlers),
            lease_s=self.settings.lease_s,
            limit=free,
        )
        for job in jobs:
            task = asyncio.create_task(self._run_job(job))
            self._running[task] = job
            task.add_done_callback(self._finished)
        return len(jobs)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self.wake.set()

    async def drain(self) -> None:
        """Run until no job is due and none is running (tests, batch jobs)."""
        while await self.run_once() or self._running:
            if self._running:
                await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until ``stop``; running jobs go on (``shutdown`` ends them)."""
        while not stop.is_set():
            try:
                started = await self.run_once()
            except Exception:
                logger.exception("claiming jobs failed; retrying")
                started = 0
            if started:
                continue
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.poll_interval_s)
            except TimeoutError:
                pass

    async def shutdown(self, stop: asyncio.Event, grace_s: float) -> None:
        """A graceful stop: claim nothing more, give running jobs ``grace_s`` to finish, then stop
        the rest and hand their leases back (``queue.release``) so that another worker claims them
        at once, without counting the attempt. A job's finished stages are already recorded (each
        pipeline stage is its own job), so only the unfinished stage runs again."""
        stop.set()
        self.wake.set()
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace_s)
        unfinished = dict(self._running)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(set(unfinished))
        for job in unfinished.values():
            if await queue.release(self.sessionmaker, job.id, self.worker_id):
                logger.info("released job %s (%s) at shutdown", job.id, job.kind)

    async def _run_job(self, job: Job) -> None:
        heartbeat = asyncio.create_task(self._keep_lease(job))
        started = time.monotonic()
        try:
            with job_log_context(job.payload, kind=job.kind, job_id=str(job.id)):
                outcome = await self._handle(job)
        finally:
            heartbeat.cancel()
        metrics.job_finished(job.kind, outcome, seconds=time.monotonic() - started, attempts=job.attempts)

    async def _handle(self, job: Job) -> str:
        """Run the handler and settle the job; how it ended (``callcov.kit.metrics.OUTCOMES``)."""
        try:
            await self.handlers[job.kind](job)
        except Settled:
            return "settled"
        except PermanentError as exc:
            await queue.fail(self.sessionmaker, job.id, self.worker_id, str(exc))
            return "failed"
        except Exception as exc:  # RetryableError and anything unexpected: retry with backoff
            return await self._retry(job, exc)
        await queue.complete(self.sessionmaker, job.id, self.worker_id)
        return "done"

    async def _retry(self, job: Job, exc: Exception) -> str:
        if not isinstance(exc, RetryableError):
            logger.exception("job %s (%s) failed unexpectedly", job.id, job.kind, exc_info=exc)
        reason = f"{type(exc).__name__}: {exc}"
        if await queue.retry_later(self.sessionmaker, job, self.worker_id, reason):
            return "retry"
        if self.on_give_up:
            await self.on_give_up(job, reason)
        return "gave_up"

    async def _keep_lease(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            if not await queue.extend_lease(self.sessionmaker, job.id, self.worker_id, self.settings.lease_s):
                logger.warning("lost the lease of job %s", job.id)
                return


def payload_id(job: Job, name: str) -> Any:
    return uuid.UUID(str(job.payload[name]))
