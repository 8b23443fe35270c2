"""Structured logs: the JSON formatter carries the request id of the request being served (set by the
real request-id middleware) and the analysis id of the job being handled (set by the runner from the
job's payload, on PostgreSQL); ``configure_logging`` switches the ``callcov`` loggers between text and
JSON without duplicating records."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from callcov.config import Settings
from callcov.db import create_engine, create_sessionmaker
from callcov.kit.logs import JsonFormatter, configure_logging
from callcov.middleware import RequestIdMiddleware
from callcov.models import Job
from callcov.worker import queue
from callcov.worker.runner import Runner

logger = logging.getLogger("callcov.tests.logs")


@pytest.fixture
def records() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The ``callcov`` records of the test, as the JSON formatter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("callcov")
    root.addHandler(handler)
    level, root.level = root.level, logging.INFO
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.asyncio
async def test_a_request_s_records_carry_its_request_id(records) -> None:  # type: ignore[no-untyped-def]
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        logger.info("handling %s", scope["path"], extra={"route": "probe"})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=RequestIdMiddleware(endpoint))
    async with httpx.AsyncClient(transport=transport, base_url="http://callcov.test") as client:
        response = await client.get("/probe", headers={"X-Request-ID": "req_0123456789abcdef"})
    logger.info("after the request")
    first, after = records()
    assert response.headers["x-request-id"] == "req_0123456789abcdef"
    assert first["request_id"] == "req_0123456789abcdef" and first["message"] == "handling /probe"
    assert first["route"] == "probe" and first["logger"] == "callcov.tests.logs" and first["level"] == "INFO"
    assert "request_id" not in after and "analysis_id" not in after


@pytest.mark.asyncio
async def test_a_job_s_records_carry_its_analysis_id(records, settings_factory) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(settings_factory())
    sessionmaker = create_sessionmaker(engine)
    kind, analysis_id = f"logged-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    async with sessionmaker() as session:
        job = queue.enqueue(session, kind, {"analysis_id": analysis_id})
        await session.commit()

    async def handler(job: Job) -> None:
        logger.warning("working on it")

    await Runner(sessionmaker, Settings().worker, {kind: handler}).drain()
    await engine.dispose()
    [record] = [r for r in records() if r["message"] == "working on it"]
    assert record["analysis_id"] == analysis_id
    assert record["job_kind"] == kind and record["job_id"] == str(job.id)
    assert "request_id" not in record


def test_configure_logging_switches_format_once(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger("callcov")
    try:
        configure_logging("INFO", "json")
        configure_logging("INFO", "json")  # a second app in the process: still one handler
        logger.info("structured")
        lines = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["message"] for line in lines] == ["structured"]
        assert root.propagate is False
    finally:
        configure_logging("INFO", "text")
    assert root.propagate is True and root.handlers == []
