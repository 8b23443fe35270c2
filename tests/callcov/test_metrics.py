"""Operational metrics on PostgreSQL: job runs through a real ``Runner`` move the stage-latency, outcome
and attempt metrics per kind; a completed analysis counts its LLM status and audio seconds; the queue
sampler reports depth and the age of the oldest due job per kind; ``GET /metrics`` answers Prometheus
text only when enabled (and with its token), outside the schema and the rate limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import SignUp
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from test_pipeline import TRANSCRIPT, FakeTranscriber, runner_for, submitted

from callcov.config import Settings
from callcov.db import create_engine, create_sessionmaker
from callcov.kit import metrics
from callcov.kit.prometheus_metrics import PrometheusMetrics
from callcov.kit.time import utcnow
from callcov.models import Job
from callcov.worker import queue
from callcov.worker.runner import PermanentError, RetryableError, Runner
from callcov.worker.sampler import run_sampler, sample_queue

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def sessionmaker(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings_factory())
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def sink() -> Any:
    with metrics.installed(PrometheusMetrics(CollectorRegistry())) as installed:
        yield installed


def value(sink: PrometheusMetrics, name: str, **labels: str) -> float:
    return sink.registry.get_sample_value(name, labels) or 0.0


async def add_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], kind: str, n: int = 1, **fields: Any
) -> None:
    async with sessionmaker() as session:
        for _ in range(n):
            job = queue.enqueue(session, kind, {"analysis_id": str(uuid.uuid4())})
            for name, field_value in fields.items():
                setattr(job, name, field_value)
        await session.commit()


def kinds(*names: str) -> list[str]:
    suffix = uuid.uuid4().hex[:6]
    return [f"{name}-{suffix}" for name in names]


async def test_runner_records_stage_latency_outcome_and_attempts(sessionmaker, sink) -> None:  # type: ignore[no-untyped-def]
    ok, flaky, broken, hopeless = kinds("ok", "flaky", "broken", "hopeless")

    async def slow_ok(job: Job) -> None:
        await asyncio.sleep(0.06)

    async def transient(job: Job) -> None:
        raise RetryableError("busy")

    async def permanent(job: Job) -> None:
        raise PermanentError("never")

    await add_jobs(sessionmaker, ok, 2)
    await add_jobs(sessionmaker, flaky, max_attempts=3)
    await add_jobs(sessionmaker, broken)
    await add_jobs(sessionmaker, hopeless, max_attempts=1)
    runner = Runner(
        sessionmaker,
        Settings().worker,
        {ok: slow_ok, flaky: transient, broken: permanent, hopeless: transient},
    )
    await runner.drain()

    assert value(sink, "callcov_jobs_finished_total", kind=ok, outcome="done") == 2
    assert value(sink, "callcov_job_duration_seconds_count", kind=ok, outcome="done") == 2
    assert value(sink, "callcov_job_duration_seconds_sum", kind=ok, outcome="done") >= 0.12
    assert value(sink, "callcov_job_duration_seconds_bucket", kind=ok, outcome="done", le="0.05") == 0
    assert value(sink, "callcov_jobs_finished_total", kind=flaky, outcome="retry") == 1
    assert value(sink, "callcov_jobs_finished_total", kind=broken, outcome="failed") == 1
    assert value(sink, "callcov_jobs_finished_total", kind=hopeless, outcome="gave_up") == 1
    assert value(sink, "callcov_jobs_finished_total", kind=hopeless, outcome="retry") == 0
    assert value(sink, "callcov_job_attempts_sum", kind=ok, outcome="done") == 2  # attempt 1, twice
    assert value(sink, "callcov_job_attempts_bucket", kind=hopeless, outcome="gave_up", le="1.0") == 1


async def test_a_completed_analysis_counts_its_llm_status_and_audio(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp, sink: PrometheusMetrics
) -> None:
    with metrics.installed(metrics.NullMetrics()):  # jobs other tests left behind count elsewhere
        await runner_for(app, FakeTranscriber()).drain()
    await submitted(client, signed_up)
    await submitted(client, signed_up)
    await runner_for(app, FakeTranscriber()).drain()
    # These runners have no LLM client: the rules stand in.
    assert value(sink, "callcov_analyses_completed_total", llm_status="skipped") == 2
    assert value(sink, "callcov_audio_seconds_total") == 2 * TRANSCRIPT.duration_s
    # The transcription stage settles its own job (it enqueues the scoring in the same transaction).
    assert value(sink, "callcov_jobs_finished_total", kind="analysis", outcome="settled") == 2
    assert value(sink, "callcov_jobs_finished_total", kind="analysis.score", outcome="done") == 2


async def test_sampler_reports_depth_and_oldest_due_age_per_kind(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    busy, idle = kinds("busy", "idle")
    now = utcnow()
    await add_jobs(sessionmaker, busy, 1, run_after=now - timedelta(hours=2))
    # The oldest one is running.
    [claimed] = await queue.claim(sessionmaker, worker_id="w", kinds=[busy], lease_s=60, limit=1)
    await add_jobs(sessionmaker, busy, 2, run_after=now - timedelta(seconds=90))
    await add_jobs(sessionmaker, busy, 1, run_after=now - timedelta(seconds=5))
    await add_jobs(sessionmaker, busy, 1, run_after=now + timedelta(hours=1))

    sampled = await sample_queue(sessionmaker, [busy, idle])
    samples = {(s.kind, s.status): s for s in sampled if s.kind in (busy, idle)}  # others: other tests

    assert {key: s.depth for key, s in samples.items()} == {
        (busy, "due"): 3,
        (busy, "scheduled"): 1,
        (busy, "running"): 1,
        (idle, "due"): 0,
        (idle, "scheduled"): 0,
        (idle, "running"): 0,
    }
    assert 85 <= samples[(busy, "due")].oldest_due_age_s < 150
    assert samples[(idle, "due")].oldest_due_age_s == 0


async def test_sampler_loop_sets_the_gauges_until_stopped(sessionmaker, sink) -> None:  # type: ignore[no-untyped-def]
    [kind] = kinds("sampled")
    await add_jobs(sessionmaker, kind, 2, run_after=utcnow() - timedelta(seconds=30))
    stop = asyncio.Event()
    loop = asyncio.create_task(run_sampler(sessionmaker, lambda: [kind], interval_s=0.05, stop=stop))
    async with asyncio.timeout(10):
        while value(sink, "callcov_queue_depth", kind=kind, status="due") != 2:
            await asyncio.sleep(0.02)
    assert value(sink, "callcov_queue_oldest_due_age_seconds", kind=kind) >= 30
    assert value(sink, "callcov_queue_depth", kind=kind, status="running") == 0
    stop.set()
    await asyncio.wait_for(loop, 5)


class TestEndpoint:
    async def test_off_by_default(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/metrics")).status_code == 404

    async def test_text_format_behind_its_token_outside_schema_and_rate_limit(
        self, app_factory: Callable[..., Any]
    ) -> None:
        async with app_factory(
            metrics={"enabled": True, "token": "scrape-token-0123456789", "sample_interval_s": 0.05},
            ratelimit={"default_per_window": 1},
        ) as client:
            assert (await client.get("/metrics")).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await client.get("/metrics", headers=wrong)).status_code == 401
            auth = {"Authorization": "Bearer scrape-token-0123456789"}
            for _ in range(3):  # more than the rate limit allows
                response = await client.get("/metrics", headers=auth)
                assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=")
            assert "# TYPE callcov_job_duration_seconds histogram" in response.text
            async with asyncio.timeout(10):  # the app's own sampler fills the queue gauges
                while 'callcov_queue_depth{kind="analysis",status="due"}' not in response.text:
                    await asyncio.sleep(0.05)
                    response = await client.get("/metrics", headers=auth)
            schema = (await client.get("/api/v1/openapi.json")).json()
            assert "/metrics" not in schema["paths"]
