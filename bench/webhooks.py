"""Webhook delivery benchmark: N finished analyses' events delivered by the dispatcher's delivery loop
(sign, SSRF check, POST, record the attempt, all in PostgreSQL) against the plain libraries doing only
the HTTP part (standardwebhooks signing + httpx POSTs at the same concurrency), to one receiver process
on loopback that verifies every signature and counts deliveries per webhook-id.

    python bench/webhooks.py [--events 200] [--loops 2] [--concurrency 16]

Writes its section of docs/benchmarks.md. Needs PostgreSQL (scripts/services.sh). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingress import BIN, SECRET, fresh_database, write_section  # noqa: E402

from callcov.analyses import events as analysis_events  # noqa: E402
from callcov.config import Settings  # noqa: E402
from callcov.db import create_engine, create_sessionmaker, run_migrations  # noqa: E402
from callcov.jobs import build_job_runners  # noqa: E402
from callcov.models import Analysis, User  # noqa: E402
from callcov.webhooks import events, secret_store  # noqa: E402
from callcov.webhooks.delivery import signed_headers  # noqa: E402

MARKS = ("<!-- webhooks:begin -->", "<!-- webhooks:end -->")
SINK_PORT = 8767


def start_sink(secret: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SINK_SECRET": secret, "PYTHONPATH": str(ROOT / "bench")}
    proc = subprocess.Popen(
        [str(BIN / "uvicorn"), "webhook_sink:app", "--port", str(SINK_PORT), "--log-level", "warning"],
        env=env,
        cwd=ROOT / "bench",
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{SINK_PORT}/stats", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the sink did not start")


def sink(path: str) -> dict[str, int]:
    return httpx.post(f"http://127.0.0.1:{SINK_PORT}{path}", timeout=10).json()  # type: ignore[no-any-return]


async def seed(settings: Settings, n: int) -> tuple[list, str]:
    """A user, n completed analyses with a webhook URL, and their events (the outbox rows)."""
    sessionmaker = create_sessionmaker(create_engine(settings))
    async with sessionmaker() as session:
        user = User(email=f"bench-{uuid.uuid4().hex[:8]}@example.com", hashed_password="x", is_verified=True)
        session.add(user)
        await session.flush()
        row = await secret_store.get_or_create(session, settings.webhooks, user.id, True)
        secret = secret_store.current(settings.webhooks, row)
        recorded = []
        for i in range(n):
            analysis = Analysis(
                user_id=user.id, livemode=True, agent_id=f"agent_{i}", contact_id="c", status="completed",
                webhook_url=f"http://127.0.0.1:{SINK_PORT}/hook", duration_ms=60_000,
                results={"summary": "x" * 400}, transcript={"text": "Agent: hello\nCustomer: hi", "segments": []},
            )  # fmt: skip
            session.add(analysis)
            await session.flush()
            recorded.append(analysis_events.record(session, analysis))
        await session.commit()
    return recorded, secret


class NoTranscriber:
    async def transcribe(self, request: object) -> object:
        raise AssertionError("the webhook bench runs no analysis job")


async def platform_run(settings: Settings, loops: int, concurrency: int, n: int) -> float:
    sessionmaker = create_sessionmaker(create_engine(settings))
    settings = settings.model_copy(
        update={
            "worker": settings.worker.model_copy(update={"lease_s": 60}),
            "webhooks": settings.webhooks.model_copy(update={"concurrency": concurrency}),
        }
    )
    # The dispatcher's delivery loop as production builds it, once per simulated replica.
    runners = [
        build_job_runners(sessionmaker, settings, transcriber=NoTranscriber(), llm=None)["webhooks"]
        for _ in range(loops)
    ]
    started = time.perf_counter()
    await asyncio.gather(*(runner.drain() for runner in runners))
    elapsed = time.perf_counter() - started
    assert sink("/stats")["unique"] == n, sink("/stats")
    return elapsed


async def plain_run(recorded: list, secret: str, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def send(event: object) -> None:
            body = events.encode(event.payload)  # type: ignore[attr-defined]
            headers = signed_headers(event, body, [secret], datetime.now(tz=UTC))  # type: ignore[arg-type]
            async with gate:
                r = await client.post(event.url, content=body.encode(), headers=headers)  # type: ignore[attr-defined]
                assert r.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(send(event) for event in recorded))
        return time.perf_counter() - started


def render(
    n: int, loops: int, concurrency: int, platform_s: float, plain_s: float, stats: dict[str, int]
) -> str:
    rate, plain_rate = n / platform_s, n / plain_s
    return "\n".join(
        [
            MARKS[0],
            f"{n} events to one healthy receiver process on loopback (verifies every signature), "
            f"2 cores, PostgreSQL; {loops} delivery loops x {concurrency} in flight (as {loops} dispatcher replicas).",
            "",
            "| | time | deliveries/s | ratio |",
            "|---|---:|---:|---:|",
            f"| CallCov delivery loop (claim, SSRF check, sign, POST, record attempt) | {platform_s:.2f} s | {rate:.0f} | {rate / plain_rate:.2f}x |",
            f"| plain standardwebhooks + httpx, same concurrency (no queue, no records) | {plain_s:.2f} s | {plain_rate:.0f} | 1.00x |",
            "",
            f"Receiver: {stats['received']} requests, {stats['unique']} distinct webhook-ids, "
            f"{stats['verified']} verified: every event delivered exactly once.",
            MARKS[1],
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    settings = Settings(
        environment="testing",
        db={"url": fresh_database()},
        auth={"jwt_secret": SECRET, "api_key_pepper": SECRET},
        network={"url_allow": ["127.0.0.0/8"]},
    )
    run_migrations(settings)
    recorded, secret = asyncio.run(seed(settings, args.events))
    proc = start_sink(secret)
    try:
        platform_s = asyncio.run(platform_run(settings, args.loops, args.concurrency, args.events))
        stats = sink("/stats")
        sink("/reset")
        plain_s = asyncio.run(plain_run(recorded, secret, args.loops * args.concurrency))
    finally:
        proc.terminate()
        proc.wait()
    table = render(args.events, args.loops, args.concurrency, platform_s, plain_s, stats)
    print(table)
    write_section(*MARKS, table, "Webhook deliveries")


if __name__ == "__main__":
    main()
