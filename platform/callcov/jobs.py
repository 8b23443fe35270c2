"""Every domain's background jobs, composed: the task groups the dispatcher runs (one runner each),
built from the domains' ``tasks.py`` by the worker. The only place that lists them; the dispatcher
deployment, the tests and the benches all build their runners here."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses import tasks as analyses
from callcov.analyses.pipeline import Inference
from callcov.billing import tasks as billing
from callcov.config import Settings
from callcov.inference.ports import LLMClient, Transcriber
from callcov.rescores import tasks as rescores
from callcov.webhooks import tasks as webhooks
from callcov.worker.wiring import Runners, TaskGroup, build_runners

TASK_GROUPS: tuple[TaskGroup, ...] = (
    analyses.TRANSCRIPTION,
    analyses.SCORING,
    rescores.RESCORING,
    webhooks.TASKS,
    billing.TASKS,
)


def build_job_runners(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    transcriber: Transcriber,
    llm: LLMClient | None,
    worker_id: str | None = None,
) -> Runners:
    """The runners of every task group (by group name: ``transcription``, ``scoring``, ``rescoring``,
    ``webhooks``, ``billing``)."""
    ports = Inference(transcriber=transcriber, llm=llm)
    return build_runners(TASK_GROUPS, sessionmaker, settings, ports, worker_id=worker_id)
