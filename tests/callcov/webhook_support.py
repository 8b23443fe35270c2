"""Shared by the webhook test modules: a database of their own (so the delivery loops only ever see
their events), an app with loopback allowed and fast retries, a verifying receiver on loopback, and a
harness that submits, processes (the real analysis job with a test double of the transcriber) and
delivers (the real delivery job over real HTTP). Test modules import the fixtures they use."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from conftest import (
    Account,
    asgi_client,
    asgi_in_thread,
    create_key,
    fresh_database,
    job_runners,
    make_settings,
    sign_up,
)
from fastapi import FastAPI
from sqlmodel import col, select
from test_pipeline import FakeTranscriber, runner_for
from test_submission import submit
from webhook_receiver import Receiver

from callcov.main import create_app
from callcov.models import WebhookEvent
from callcov.state import state_of_app
from callcov.worker.runner import Runner

RETRY_S = 0.3
TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def webhook_db() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def settings_for(db_url: str, data_dir: Path) -> object:
    return make_settings(
        db_url,
        data_dir,
        network={"url_allow": ["127.0.0.0/8"]},
        # The last wait is long only so that a Retry-After of a few seconds is within the cap.
        webhooks={"retry_schedule_s": [RETRY_S] * 6 + [5.0], "timeout_s": TIMEOUT_S},
    )


@pytest_asyncio.fixture(scope="module")
async def wapp(webhook_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    app = create_app(settings_for(webhook_db, tmp_path_factory.mktemp("webhooks")))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def wclient(wapp: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(wapp) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with asgi_in_thread(hook) as url:
        yield hook, url + "/hooks/callcov"


def webhook_runner(app: FastAPI, concurrency: int = 8) -> Runner:
    """The production delivery runner (``callcov.jobs``)."""
    runners = job_runners(app, worker={"lease_s": 30}, webhooks={"concurrency": concurrency})
    return runners["webhooks"]


async def pump(runner: Runner, until: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    """Run the delivery loop (retries come due after RETRY_S) until ``until`` holds."""
    deadline = time.monotonic() + timeout_s
    while not await until():
        assert time.monotonic() < deadline, "timed out waiting for deliveries"
        await runner.drain()
        await asyncio.sleep(0.05)


class Harness:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client

    async def account(self, mode: str = "live") -> tuple[Account, str]:
        account = await sign_up(self.client, self.app)
        return account, await create_key(self.client, account, mode)

    async def secret(self, account: Account, mode: str = "live") -> str:
        r = await self.client.get(f"/api/v1/webhooks/secret?mode={mode}", headers=account.headers)
        assert r.status_code == 200, r.text
        return str(r.json()["secret"])

    async def submit(self, key: str, url: str | None) -> str:
        fields = {"webhook_url": url} if url else {}
        r = await submit(self.client, key, **fields)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def process(self, transcriber: FakeTranscriber | None = None) -> None:
        await runner_for(self.app, transcriber or FakeTranscriber(), concurrency=8).drain()

    async def events(self, analysis_id: str) -> list[WebhookEvent]:
        async with state_of_app(self.app).sessionmaker() as session:
            rows = await session.exec(
                select(WebhookEvent)
                .where(col(WebhookEvent.analysis_id) == uuid.UUID(analysis_id))
                .order_by(col(WebhookEvent.created_at))
            )
            return list(rows.all())

    async def finished(self, analysis_id: str) -> bool:
        return all(event.status != "pending" for event in await self.events(analysis_id))

    async def deliveries(self, key: str, analysis_id: str) -> list[dict]:
        r = await self.client.get(
            f"/api/v1/analysis/{analysis_id}/webhook/deliveries", headers={"X-API-Key": key}
        )
        assert r.status_code == 200, r.text
        return list(reversed(r.json()["items"]))  # oldest first

    async def analysis(self, key: str, analysis_id: str) -> dict:
        return (await self.client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": key})).json()


@pytest.fixture
def h(wapp: FastAPI, wclient: httpx.AsyncClient) -> Harness:
    return Harness(wapp, wclient)
