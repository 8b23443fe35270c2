"""The queue sampler: one ``GROUP BY`` over the unfinished jobs every few seconds, into the queue
gauges (``callcov_queue_depth``, ``callcov_queue_oldest_due_age_seconds``). Run by the dispatcher
(and by the app of a run without Ray, for ``GET /metrics``), never per request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from sqlalchemy import case, func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.kit import metrics
from callcov.kit.metrics import QUEUE_STATES, MetricsSink, QueueSample
from callcov.kit.time import UTCDateTime, utcnow
from callcov.models import Job

logger = logging.getLogger("callcov.worker")


async def sample_queue(
    sessionmaker: async_sessionmaker[AsyncSession], kinds: Iterable[str]
) -> list[QueueSample]:
    """Depth per kind and state, and the age of the oldest due job per kind: every state of every kind
    in ``kinds`` (zero when empty, so a drained queue reads 0) and of any other kind found."""
    now = utcnow()
    state = case(
        (col(Job.status) == "running", case((col(Job.lease_until) < now, "due"), else_="running")),
        (col(Job.run_after) > now, "scheduled"),
        else_="due",
    )
    # A due job has waited since its run_after (queued) or since its lease ran out (a crashed runner).
    waiting_since = case((col(Job.status) == "queued", col(Job.run_after)), else_=col(Job.lease_until))
    query = (
        select(col(Job.kind), state, func.count(), func.min(waiting_since, type_=UTCDateTime()))
        .where(col(Job.status).in_(("queued", "running")))
        .group_by(col(Job.kind), state)
    )
    async with sessionmaker() as session:
        rows = (await session.exec(query)).all()
    found = {(kind, status): (int(depth), since) for kind, status, depth, since in rows}
    every_kind = sorted(set(kinds) | {kind for kind, _ in found})
    samples = []
    for kind in every_kind:
        for status in QUEUE_STATES:
            depth, since = found.get((kind, status), (0, None))
            age = max((now - since).total_seconds(), 0.0) if status == "due" and since is not None else 0.0
            samples.append(QueueSample(kind, status, depth, age))
    return samples


async def run_sampler(
    sessionmaker: async_sessionmaker[AsyncSession],
    kinds: Callable[[], Iterable[str]],
    *,
    interval_s: float,
    stop: asyncio.Event,
    sink: MetricsSink | None = None,
) -> None:
    """Sample every ``interval_s`` until ``stop`` into ``sink`` (the process' sink by default); a failed
    sample is logged and tried again next time."""
    while not stop.is_set():
        try:
            metrics.queue_sampled(await sample_queue(sessionmaker, kinds()), sink)
        except Exception:
            logger.exception("sampling the job queue failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            pass
