"""The dispatcher: a Serve deployment that drains the durable job queue. It builds the inference
ports (transcription through the ``whisper`` app's handle, scoring through the OpenAI-compatible
``llm`` endpoint with the internal key) and runs the loops of every domain's jobs as
``callcov.jobs`` builds them (one runner per task group: transcription, scoring, webhook deliveries,
billing), woken per job kind over Redis.

The two analysis stages run with as many calls in flight as their model deployment can take at its
most replicas (``transcription_slots``, ``scoring_slots``, set from the config by
``deployments.capacity``), so that a backlog queues at the handles, where Serve's autoscaler sees it.

A replica being stopped (scale-in, redeploy) stops claiming, gives running jobs ``graceful_stop_s`` to
finish and hands the leases of the rest back (``Runner.shutdown``); a finished transcription is kept,
because scoring is its own job.

It exports the job metrics through Ray (``deployments/metrics.py``) and samples the queue gauges every
``metrics.sample_interval_s``.

Before it claims a job it checks the LLM (``callcov.inference.llm_check``): the model named by
``llm_model`` (the same YAML anchor as the ``llm`` app's model in ``configs/serve.*.yaml``) must be
served, and the route must refuse a caller without the key. A model that is still loading is waited
for; a wrong name or an open route fails the replica's start, so the deploy fails loudly."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from pydantic import BaseModel, Field
from ray import serve
from ray.serve import Application

from callcov.config import Settings, get_settings
from callcov.db import create_engine, create_sessionmaker
from callcov.inference.llm_check import wait_for_llm
from callcov.inference.openai_client import build_llm_client
from callcov.jobs import build_job_runners
from callcov.worker.sampler import run_sampler
from callcov.worker.wake import listen
from deployments.db_pools import PoolArgs, check_pool_budget
from deployments.inference import ServeTranscriber, replica_options
from deployments.metrics import install_ray_metrics

logger = logging.getLogger("callcov.dispatcher")


class DispatcherArgs(BaseModel):
    name: str = "dispatcher"
    num_replicas: int = Field(default=1, ge=1)
    num_cpus: float = Field(default=0.25, ge=0)
    # The model the `llm` app serves (a YAML anchor in the config): asked for, and checked at start.
    llm_model: str | None = None
    # Each replica's database pool; set by deployments.deploy / deployments.kuberay from the replica counts.
    db_pool: PoolArgs | None = None
    # Calls in flight per stage on each replica; set from the model apps by deployments.capacity.
    transcription_slots: int | None = Field(default=None, ge=1)
    scoring_slots: int | None = Field(default=None, ge=1)
    # On stop: how long running jobs may finish before their leases are handed back. Serve's
    # graceful_shutdown_timeout_s is set a little above it.
    graceful_stop_s: float = Field(default=45.0, ge=0)


ARGS_MODEL = DispatcherArgs


class Dispatcher:
    async def __init__(  # type: ignore[misc]  # Serve awaits it
        self, settings: Settings | None = None, graceful_stop_s: float = 45.0
    ) -> None:
        self.settings = settings or get_settings()
        self.graceful_stop_s = graceful_stop_s
        install_ray_metrics()
        inference = self.settings.inference
        llm = build_llm_client(inference)
        if inference.check_llm:
            served = await wait_for_llm(llm, timeout_s=inference.llm_startup_timeout_s)
            logger.info("LLM %r is served (of %s), behind the internal key", llm.model, served)
        self.engine = create_engine(self.settings)
        self.runners = build_job_runners(
            create_sessionmaker(self.engine),
            self.settings,
            transcriber=ServeTranscriber(inference.whisper_app),
            llm=llm,
            worker_id=f"{socket.gethostname()}-{os.getpid()}",
        )
        self.stop = asyncio.Event()
        self.loops = self.runners.start(self.stop)
        self.tasks = list(self.loops)
        sampled = create_sessionmaker(self.engine)
        interval_s = self.settings.metrics.sample_interval_s
        sampler = run_sampler(sampled, lambda: self.runners.kinds, interval_s=interval_s, stop=self.stop)
        self.tasks.append(asyncio.create_task(sampler))
        if self.settings.redis.url:
            retry_s = self.settings.worker.poll_interval_s * 5
            wake_ups = listen(self.settings.redis, self.runners.wake, self.stop, retry_s=retry_s)
            self.tasks.append(asyncio.create_task(wake_ups))

    async def __del__(self) -> None:
        """Serve calls this when it stops the replica: finish or hand back the running jobs."""
        await self.runners.shutdown(self.stop, self.graceful_stop_s)
        for task in self.tasks:
            task.cancel()
        await self.engine.dispose()

    async def check_health(self) -> None:
        if any(loop.done() for loop in self.loops):
            raise RuntimeError("a dispatcher loop has stopped")

    async def stats(self) -> dict[str, Any]:
        """Jobs in flight and slots per task group, e.g. ``{"transcription": {"running": 3, "slots": 8}}``."""
        return {
            group: {
                "worker_id": runner.worker_id,
                "running": runner.in_flight,
                "slots": runner.settings.concurrency,
            }
            for group, runner in self.runners.by_group.items()
        }


def build_app(args: dict[str, Any] | None = None) -> Application:
    options = DispatcherArgs.model_validate(args or {})
    check_pool_budget(options.name, options.num_replicas, options.db_pool, get_settings().db)
    slots = {
        "CALLCOV_WORKER__TRANSCRIPTION_CONCURRENCY": options.transcription_slots,
        "CALLCOV_WORKER__SCORING_CONCURRENCY": options.scoring_slots,
    }
    env = {name: str(value) for name, value in slots.items() if value is not None}
    actor_options = replica_options(options.num_cpus, options.db_pool, options.llm_model, env)
    deployment = serve.deployment(
        Dispatcher,
        name=options.name,
        num_replicas=options.num_replicas,
        ray_actor_options=actor_options,
        graceful_shutdown_timeout_s=options.graceful_stop_s + 15,
    )
    return deployment.bind(graceful_stop_s=options.graceful_stop_s)
