"""The webhook delivery job: many at once (they only wait on the network)."""

from __future__ import annotations

from callcov.config import Settings
from callcov.webhooks.delivery import WebhookDelivery
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker.wiring import Handlers, JobContext, TaskGroup


def _handlers(context: JobContext) -> Handlers:
    delivery = WebhookDelivery(context.sessionmaker, context.settings)
    return Handlers({WEBHOOK_JOB: delivery.handle}, on_give_up=delivery.give_up)


def _concurrency(settings: Settings) -> int:
    return settings.webhooks.concurrency


TASKS = TaskGroup(name="webhooks", kinds=(WEBHOOK_JOB,), build=_handlers, concurrency=_concurrency)
