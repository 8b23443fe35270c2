"""``GET /metrics`` of a run without Ray: the ``prometheus_client`` sink of this app in Prometheus'
text format, with the queue gauges kept fresh by a sampler in the app's lifespan.

Off unless ``metrics.enabled`` (404); with ``metrics.token`` a scrape must send it as a bearer token.
Outside the API schema and the rate limit (``ratelimit.middleware.EXEMPT_PATHS``). On Serve the
replicas export through Ray's metrics agent instead (``deployments/metrics.py``)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import MetricsSettings
from callcov.jobs import TASK_GROUPS
from callcov.kit.prometheus_metrics import CONTENT_TYPE, PrometheusMetrics
from callcov.worker.sampler import run_sampler

PATH = "/metrics"


def job_kinds() -> list[str]:
    return [kind for group in TASK_GROUPS for kind in group.kinds]


def build_metrics_router(settings: MetricsSettings, sink: PrometheusMetrics) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    expected = f"Bearer {settings.token}".encode()

    @router.get(PATH)
    async def scrape(request: Request) -> Response:
        if settings.token:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(sink.render(), media_type=CONTENT_TYPE)

    return router


@asynccontextmanager
async def queue_sampler(
    sessionmaker: async_sessionmaker[AsyncSession], settings: MetricsSettings, sink: PrometheusMetrics
) -> AsyncIterator[None]:
    """Sample the job queue into ``sink`` while the app runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_sampler(sessionmaker, job_kinds, interval_s=settings.sample_interval_s, stop=stop, sink=sink)
    )
    try:
        yield
    finally:
        stop.set()
        await task
