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
    """A transient failure: run the job again later (backoff), until max_attempts (the job is then
    given up: the give-up hook records the failure)."""


class WorkerCrashed(RetryableError):
    """What ran the job died under it (a model replica killed mid-request): retried like a transient
    failure, but it counts against the job's crash budget (``WorkerSettings.max_crashes``), like a
    lease that ran out."""


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
        claimed_at = time.monotonic()  # the leases run from (a little after) this moment
        jobs = await queue.claim(
            self.sessionmaker,
            worker_id=self.worker_id,
            kinds=list(self.handlers),
            lease_s=self.settings.lease_s,
            limit=free,
        )
        for job in jobs:
            task = asyncio.create_task(self._run_job(job, claimed_at))
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

    async def _run_job(self, job: Job, claimed_at: float) -> None:
        """Run the job's handler beside its lease's heartbeat. A heartbeat that cannot keep the lease
        (the database unreachable until the lease is about to run out, or the job taken over by
        another worker) cancels the handler: the job is someone else's from then on."""
        started = time.monotonic()
        with job_log_context(job.payload, kind=job.kind, job_id=str(job.id)):
            work = asyncio.create_task(self._handle(job))
            lost = asyncio.Event()
            heartbeat = asyncio.create_task(self._keep_lease(job, work, lost, claimed_at))
            try:
                outcome = await work
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not lost.is_set() or (current is not None and current.cancelling()):
                    raise  # a shutdown: Runner.shutdown hands the lease back
                outcome = "lost"
            except Exception:  # settling failed (the database unreachable): the lease runs out
                logger.exception(
                    "job %s (%s) could not be settled; it will be claimed again", job.id, job.kind
                )
                outcome = "error"
            finally:
                heartbeat.cancel()
        metrics.job_finished(job.kind, outcome, seconds=time.monotonic() - started, attempts=job.attempts)

    async def _handle(self, job: Job) -> str:
        """Run the handler and settle the job; how it ended (``callcov.kit.metrics.OUTCOMES``)."""
        spent = self._budget_spent(job)
        if spent is not None:
            return await self._give_up(job, spent)
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

    def _budget_spent(self, job: Job) -> str | None:
        """Why the job, as claimed, must not run again (a lease that ran out has counted its crash)."""
        if job.crashes >= self.settings.max_crashes:
            return f"{job.crashes} crash(es): the worker or model replica running it died (lease expired)"
        if job.attempts > job.max_attempts:
            return f"its last attempt ({job.max_attempts} of {job.max_attempts}) crashed (lease expired)"
        return None

    async def _retry(self, job: Job, exc: Exception) -> str:
        if not isinstance(exc, RetryableError):
            logger.exception("job %s (%s) failed unexpectedly", job.id, job.kind, exc_info=exc)
        reason = f"{type(exc).__name__}: {exc}"
        crashed = isinstance(exc, WorkerCrashed)
        if job.attempts >= job.max_attempts or (crashed and job.crashes + 1 >= self.settings.max_crashes):
            return await self._give_up(job, reason, crashed=crashed)
        await queue.retry_later(
            self.sessionmaker, job, self.worker_id, reason, crashed=crashed, settings=self.settings
        )
        return "retry"

    async def _give_up(self, job: Job, reason: str, *, crashed: bool = False) -> str:
        """End the job for good: the domain's give-up hook first (it records the failure the client
        sees; it is idempotent), then the job. A worker that dies in between leaves the job to be
        claimed again, and given up again."""
        logger.error("job %s (%s) gave up: %s", job.id, job.kind, reason)
        if self.on_give_up:
            await self.on_give_up(job, reason)
        await queue.fail(self.sessionmaker, job.id, self.worker_id, reason, crashed=crashed)
        return "gave_up"

    async def _keep_lease(
        self, job: Job, work: asyncio.Task[str], lost: asyncio.Event, claimed_at: float
    ) -> None:
        """Extend the lease every third of it. A failed extension is tried again every tenth of the
        lease; when the lease would run out before one succeeds (a tenth of it left), or the job is
        found to be another worker's, the handler is cancelled."""
        lease_s = self.settings.lease_s
        expires = claimed_at + lease_s
        wait = lease_s / 3
        while True:
            deadline = expires - lease_s / 10
            await asyncio.sleep(max(0.0, min(wait, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                self._lose(job, work, lost, "its lease could not be extended before it ran out")
                return
            tried_at = time.monotonic()
            try:
                extended = await asyncio.wait_for(
                    queue.extend_lease(self.sessionmaker, job.id, self.worker_id, lease_s),
                    timeout=max(deadline - tried_at, 0.001),
                )
                if not extended and await queue.holder(self.sessionmaker, job.id) != self.worker_id:
                    self._lose(job, work, lost, "another worker holds it")
                    return
            except Exception as exc:  # the database unreachable (or slow): try again soon
                logger.warning("extending the lease of job %s failed: %r; trying again", job.id, exc)
                wait = lease_s / 10
                continue
            if not extended:  # settled by its own handler
                return
            expires, wait = tried_at + lease_s, lease_s / 3

    @staticmethod
    def _lose(job: Job, work: asyncio.Task[str], lost: asyncio.Event, why: str) -> None:
        logger.warning("lost the lease of job %s (%s): %s; its handler is stopped", job.id, job.kind, why)
        lost.set()
        work.cancel()


def payload_id(job: Job, name: str) -> Any:
    return uuid.UUID(str(job.payload[name]))
