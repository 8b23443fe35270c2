"""The dispatcher: a Serve deployment that drains the durable job queue with two loops: analysis
jobs (transcription through the ``whisper`` app's handle, scoring through the OpenAI-compatible
``llm`` endpoint) and webhook deliveries (many at once: they only wait on the network)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from pydantic import BaseModel, Field
from ray import serve
from ray.serve import Application

from callcov.analyses.pipeline import AnalysisPipeline, Inference
from callcov.analyses.service import ANALYSIS_JOB, WAKE_CHANNEL
from callcov.billing.jobs import billing_handlers
from callcov.config import Settings, get_settings
from callcov.db import create_engine, create_sessionmaker
from callcov.inference.openai_client import OpenAICompatibleClient
from callcov.storage.objects import build_storage
from callcov.webhooks.delivery import WebhookDelivery
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker.runner import Runner
from deployments.inference import ServeTranscriber

logger = logging.getLogger("callcov.dispatcher")


class DispatcherArgs(BaseModel):
    name: str = "dispatcher"
    num_replicas: int = Field(default=1, ge=1)
    num_cpus: float = Field(default=0.25, ge=0)


ARGS_MODEL = DispatcherArgs


class Dispatcher:
    async def __init__(self, settings: Settings | None = None) -> None:  # type: ignore[misc]  # Serve awaits it
        self.settings = settings or get_settings()
        self.engine = create_engine(self.settings)
        sessionmaker = create_sessionmaker(self.engine)
        inference = self.settings.inference
        llm = OpenAICompatibleClient(
            inference.llm_base_url,
            inference.llm_model,
            api_key=inference.llm_api_key or None,
            timeout_s=inference.llm_timeout_s,
        )
        worker_id = f"{socket.gethostname()}-{os.getpid()}"
        delivery = WebhookDelivery(sessionmaker, self.settings)
        self.webhook_runner = Runner(
            sessionmaker,
            self.settings.worker.model_copy(update={"concurrency": self.settings.webhooks.concurrency}),
            {WEBHOOK_JOB: delivery.handle},
            on_give_up=delivery.give_up,
            worker_id=f"{worker_id}-webhooks",
        )
        pipeline = AnalysisPipeline(
            sessionmaker,
            Inference(transcriber=ServeTranscriber(inference.whisper_app), llm=llm),
            build_storage(self.settings).fetch,
            on_event=self.webhook_runner.wake.set,
        )
        self.runner = Runner(
            sessionmaker,
            self.settings.worker,
            {ANALYSIS_JOB: pipeline.handle},
            on_give_up=pipeline.give_up,
            worker_id=worker_id,
        )
        # Billing jobs (Stripe events, usage reports) run beside, never behind, long analysis jobs.
        self.billing_runner = Runner(
            sessionmaker,
            self.settings.worker,
            billing_handlers(sessionmaker, self.settings.billing),
            worker_id=f"{worker_id}-billing",
        )
        self.stop = asyncio.Event()
        self.runners = [self.runner, self.webhook_runner, self.billing_runner]
        self.loops = [asyncio.create_task(runner.run_forever(self.stop)) for runner in self.runners]
        self.tasks = list(self.loops)
        if self.settings.redis.url:
            self.tasks.append(asyncio.create_task(self._listen()))

    async def _listen(self) -> None:
        """Redis wake-ups: start a submitted job at once instead of at the next poll."""
        from redis.asyncio import Redis

        channel = self.settings.redis.key_prefix + WAKE_CHANNEL
        while not self.stop.is_set():
            try:
                async with Redis.from_url(self.settings.redis.url) as redis, redis.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            for runner in self.runners:
                                runner.wake.set()
            except Exception as exc:
                logger.warning("wake-up channel unavailable (%s); polling only", exc)
                await asyncio.sleep(self.settings.worker.poll_interval_s * 5)

    async def check_health(self) -> None:
        if any(loop.done() for loop in self.loops):
            raise RuntimeError("a dispatcher loop has stopped")

    async def stats(self) -> dict[str, Any]:
        return {
            "worker_id": self.runner.worker_id,
            "running": self.runner.in_flight,
            "webhooks_in_flight": self.webhook_runner.in_flight,
        }


def build_app(args: dict[str, Any] | None = None) -> Application:
    options = DispatcherArgs.model_validate(args or {})
    deployment = serve.deployment(
        Dispatcher,
        name=options.name,
        num_replicas=options.num_replicas,
        ray_actor_options={"num_cpus": options.num_cpus},
    )
    return deployment.bind()
