"""Building the runners from the domains' task declarations.

Each domain with background jobs declares a ``TaskGroup`` in its ``tasks.py``: the job kinds it
handles, how to build their handlers (and the give-up hook) for a process, and how many jobs of the
group run at once. One group is one ``Runner`` (one loop), so a group's jobs never wait behind another
group's. The worker imports no domain: the list of groups is composed above the domains
(``callcov.jobs``) and handed to ``build_runners``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import Settings
from callcov.models import Job
from callcov.worker.runner import Handler, Runner

GiveUp = Callable[[Job, str], Awaitable[None]]


@dataclass(frozen=True)
class JobContext:
    """What a group's handlers are built from, once per process."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    # The process-wide collaborators the composition supplies (the inference ports); each group's
    # ``build`` knows what it expects here.
    ports: Any
    # Wake this process' runner of a job kind (e.g. after a commit that enqueued such a job).
    wake: Callable[[str], None]


@dataclass(frozen=True)
class Handlers:
    by_kind: Mapping[str, Handler]
    on_give_up: GiveUp | None = None


def worker_concurrency(settings: Settings) -> int:
    return settings.worker.concurrency


@dataclass(frozen=True)
class TaskGroup:
    """A domain's background jobs, run by one runner."""

    name: str
    kinds: tuple[str, ...]
    build: Callable[[JobContext], Handlers]
    concurrency: Callable[[Settings], int] = worker_concurrency


class Runners:
    """A process' runners, one per task group, by group name; ``wake(kind)`` reaches the one that
    handles ``kind`` (every runner, for a kind none of them handles)."""

    def __init__(self, runners: Mapping[str, Runner]) -> None:
        self.by_group = dict(runners)

    def __getitem__(self, group: str) -> Runner:
        return self.by_group[group]

    def __iter__(self) -> Iterator[Runner]:
        return iter(self.by_group.values())

    @property
    def kinds(self) -> set[str]:
        return {kind for runner in self for kind in runner.handlers}

    def wake(self, kind: str) -> None:
        targets = [runner for runner in self if kind in runner.handlers] or list(self)
        for runner in targets:
            runner.wake.set()

    def start(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """Run every loop until ``stop``; the tasks of the loops."""
        return [asyncio.create_task(runner.run_forever(stop)) for runner in self]

    async def shutdown(self, stop: asyncio.Event, grace_s: float) -> None:
        """Stop every loop gracefully (``Runner.shutdown``), all within one grace period."""
        await asyncio.gather(*(runner.shutdown(stop, grace_s) for runner in self))

    def only(self, *groups: str) -> Runners:
        """The runners of these groups."""
        return Runners({group: self.by_group[group] for group in groups})

    async def drain(self) -> None:
        """Run these runners until none of them has a due or running job: a job that one stage
        enqueues for the next (transcription, then scoring) is run too. For tests and batch jobs."""
        busy = True
        while busy:
            busy = False
            for runner in self:
                if await runner.run_once() or runner.in_flight:
                    busy = True
                    await runner.drain()


def build_runners(
    groups: Iterable[TaskGroup],
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    ports: Any,
    *,
    worker_id: str | None = None,
) -> Runners:
    """One runner per group, its handlers built for this process; worker ids ``<worker_id>-<group>``."""
    worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
    runners = Runners({})
    context = JobContext(sessionmaker, settings, ports, runners.wake)
    for group in groups:
        handlers = group.build(context)
        if set(handlers.by_kind) != set(group.kinds):
            raise ValueError(f"task group {group.name!r} built {sorted(handlers.by_kind)}, not {group.kinds}")
        if group.name in runners.by_group or runners.kinds & set(group.kinds):
            raise ValueError(f"task group {group.name!r} repeats a group name or a job kind")
        runners.by_group[group.name] = Runner(
            sessionmaker,
            settings.worker.model_copy(update={"concurrency": group.concurrency(settings)}),
            handlers.by_kind,
            on_give_up=handlers.on_give_up,
            worker_id=f"{worker_id}-{group.name}",
        )
    return runners
