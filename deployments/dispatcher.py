"""The dispatcher: a Serve deployment that drains the durable job queue. It builds the inference
ports (transcription through the ``whisper`` app's handle, scoring through the OpenAI-compatible
``llm`` endpoint) and runs the loops of every domain's jobs as ``callcov.jobs`` builds them (one
runner per task group: analyses, webhook deliveries, billing), woken per job kind over Redis."""

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
from callcov.inference.openai_client import OpenAICompatibleClient
from callcov.jobs import build_job_runners
from callcov.worker.wake import listen
from deployments.db_pools import PoolArgs, check_pool_budget
from deployments.inference import ServeTranscriber

logger = logging.getLogger("callcov.dispatcher")


class DispatcherArgs(BaseModel):
    name: str = "dispatcher"
    num_replicas: int = Field(default=1, ge=1)
    num_cpus: float = Field(default=0.25, ge=0)
    # Each replica's database pool; set by deployments.deploy / deployments.kuberay from the replica counts.
    db_pool: PoolArgs | None = None


ARGS_MODEL = DispatcherArgs


class Dispatcher:
    async def __init__(self, settings: Settings | None = None) -> None:  # type: ignore[misc]  # Serve awaits it
        self.settings = settings or get_settings()
        self.engine = create_engine(self.settings)
        inference = self.settings.inference
        llm = OpenAICompatibleClient(
            inference.llm_base_url,
            inference.llm_model,
            api_key=inference.llm_api_key or None,
            timeout_s=inference.llm_timeout_s,
        )
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
        if self.settings.redis.url:
            retry_s = self.settings.worker.poll_interval_s * 5
            wake_ups = listen(self.settings.redis, self.runners.wake, self.stop, retry_s=retry_s)
            self.tasks.append(asyncio.create_task(wake_ups))

    async def check_health(self) -> None:
        if any(loop.done() for loop in self.loops):
            raise RuntimeError("a dispatcher loop has stopped")

    async def stats(self) -> dict[str, Any]:
        analysis, webhooks = self.runners["analysis"], self.runners["webhooks"]
        return {
            "worker_id": analysis.worker_id,
            "running": analysis.in_flight,
            "webhooks_in_flight": webhooks.in_flight,
        }


def build_app(args: dict[str, Any] | None = None) -> Application:
    options = DispatcherArgs.model_validate(args or {})
    check_pool_budget(options.name, options.num_replicas, options.db_pool, get_settings().db)
    actor_options: dict[str, Any] = {"num_cpus": options.num_cpus}
    if options.db_pool is not None:
        actor_options["runtime_env"] = {"env_vars": options.db_pool.env_vars()}
    deployment = serve.deployment(
        Dispatcher,
        name=options.name,
        num_replicas=options.num_replicas,
        ray_actor_options=actor_options,
    )
    return deployment.bind()
