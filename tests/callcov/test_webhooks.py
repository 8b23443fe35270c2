"""Webhook deliveries end to end: real submissions, the real analysis job (with a test double of the
transcriber), the real delivery job over real HTTP to a receiver on loopback that verifies every
request with the ``standardwebhooks`` package. Runs in its own database, so the delivery loops here
only ever see this module's events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from conftest import Account, asgi_in_thread, create_key, free_port, fresh_database, make_settings, sign_up
from fastapi import FastAPI
from sqlmodel import col, select
from test_pipeline import FakeTranscriber, runner_for
from test_submission import submit
from webhook_receiver import Receiver, Reply

from callcov.config import WorkerSettings
from callcov.main import create_app
from callcov.models import DisabledWebhookUrl, WebhookAttempt, WebhookEvent, WebhookSecret
from callcov.state import state_of_app
from callcov.webhooks.delivery import WebhookDelivery
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker import queue
from callcov.worker.runner import Runner

pytestmark = pytest.mark.asyncio

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
        storage={"url_allow": ["127.0.0.0/8"]},
        webhooks={"retry_schedule_s": [RETRY_S] * 7, "timeout_s": TIMEOUT_S},
    )


@pytest_asyncio.fixture(scope="module")
async def wapp(webhook_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    app = create_app(settings_for(webhook_db, tmp_path_factory.mktemp("webhooks")))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def client(wapp: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=wapp, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://callcov.test") as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with asgi_in_thread(hook) as url:
        yield hook, url + "/hooks/callcov"


def webhook_runner(app: FastAPI, concurrency: int = 8) -> Runner:
    state = state_of_app(app)
    delivery = WebhookDelivery(state.sessionmaker, state.settings)
    return Runner(
        state.sessionmaker,
        WorkerSettings(concurrency=concurrency, lease_s=30),
        {WEBHOOK_JOB: delivery.handle},
        on_give_up=delivery.give_up,
    )


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
def h(wapp: FastAPI, client: httpx.AsyncClient) -> Harness:
    return Harness(wapp, client)


async def test_delivered_on_first_try_and_verified(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    account, key = await h.account("test")  # test mode delivers as live mode does
    hook.secrets = [await h.secret(account, "test")]
    analysis_id = await h.submit(key, url)
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))

    assert len(hook.received) == 1
    delivery = hook.received[0]
    assert delivery.verified_by == [0]
    assert delivery.msg_id.startswith("msg_") and delivery.headers["content-type"] == "application/json"
    body = delivery.json()
    assert body == await h.analysis(key, analysis_id)
    assert body["status"] == "completed" and body["livemode"] is False and "error_message" not in body
    [attempt] = await h.deliveries(key, analysis_id)
    assert attempt["object"] == "webhook_delivery" and attempt["outcome"] == "succeeded"
    assert attempt["status_code"] == 200 and attempt["event_id"] == delivery.msg_id
    assert attempt["event_type"] == "analysis.completed" and attempt["next_retry_at"] is None
    assert attempt["response_excerpt"] == "ok" and attempt["duration_ms"] >= 0


async def test_a_live_secret_does_not_verify_test_deliveries(
    h: Harness, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    account, key = await h.account("live")
    live, test = await h.secret(account, "live"), await h.secret(account, "test")
    assert live != test and live.startswith("whsec_")
    assert await h.secret(account, "live") == live  # stable
    hook.secrets = [test, live]
    analysis_id = await h.submit(key, url)
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
    assert [item.verified_by for item in hook.received] == [[1]]


async def test_server_error_is_retried_under_the_same_id(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    account, key = await h.account()
    hook.secrets = [await h.secret(account)]
    hook.answer(500, Reply(503, body=b"maintenance"), 200)
    analysis_id = await h.submit(key, url)
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))

    assert len(hook.received) == 3
    assert len({item.msg_id for item in hook.received}) == 1
    assert len({item.body for item in hook.received}) == 1
    assert all(item.verified_by == [0] for item in hook.received)
    gaps = [b.at - a.at for a, b in zip(hook.received, hook.received[1:], strict=False)]
    assert all(gap >= RETRY_S * 0.9 for gap in gaps), gaps
    attempts = await h.deliveries(key, analysis_id)
    assert [a["outcome"] for a in attempts] == ["retrying", "retrying", "succeeded"]
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    assert attempts[1]["response_excerpt"] == "maintenance"
    assert attempts[0]["next_retry_at"] is not None and attempts[2]["next_retry_at"] is None
    [event] = await h.events(analysis_id)
    assert event.status == "delivered" and event.attempts == 3


async def test_receiver_down_then_up(h: Harness) -> None:
    hook = Receiver()
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    account, key = await h.account()
    hook.secrets = [await h.secret(account)]
    analysis_id = await h.submit(key, url)
    await h.process()
    runner = webhook_runner(h.app)

    async def failed_twice() -> bool:
        return (await h.events(analysis_id))[0].attempts >= 2

    await pump(runner, failed_twice)
    with asgi_in_thread(hook, port=port):
        await pump(runner, lambda: h.finished(analysis_id))
    attempts = await h.deliveries(key, analysis_id)
    assert attempts[0]["status_code"] is None and "Connection failed" in attempts[0]["error"]
    assert attempts[-1]["outcome"] == "succeeded" and len(hook.received) == 1
    assert hook.received[0].verified_by == [0]


async def test_client_error_ends_the_delivery(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    _, key = await h.account()
    hook.answer(Reply(400, body=b"bad payload"))
    analysis_id = await h.submit(key, url)
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
    await asyncio.sleep(RETRY_S * 2)
    await webhook_runner(h.app).drain()
    assert len(hook.received) == 1
    [attempt] = await h.deliveries(key, analysis_id)
    assert attempt["outcome"] == "failed" and attempt["status_code"] == 400
    [event] = await h.events(analysis_id)
    assert event.status == "failed" and event.last_error == "HTTP 400"


async def test_gone_disables_the_url_until_it_is_set_again(
    h: Harness, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    account, key = await h.account()
    hook.secrets = [await h.secret(account)]
    hook.answer(410)
    first = await h.submit(key, url)
    await h.process()
    runner = webhook_runner(h.app)
    await pump(runner, lambda: h.finished(first))
    assert len(hook.received) == 1
    async with state_of_app(h.app).sessionmaker() as session:
        disabled = (await session.exec(select(DisabledWebhookUrl).where(DisabledWebhookUrl.url == url))).all()
    assert len(disabled) == 1

    second = await h.submit(key, url)  # same account, same URL: nothing is sent
    await h.process()
    await pump(runner, lambda: h.finished(second))
    assert len(hook.received) == 1
    [event] = await h.events(second)
    assert event.status == "failed" and "410" in (event.last_error or "")

    # Setting the URL again re-enables it, and a finished analysis is delivered at once.
    r = await h.client.post(
        f"/api/v1/analysis/{second}/webhook", json={"webhook_url": url}, headers={"X-API-Key": key}
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["webhook_url"] == url
    await pump(runner, lambda: h.finished(second))
    assert len(hook.received) == 2 and hook.received[1].verified_by == [0]
    assert hook.received[1].json()["id"] == second


async def test_slow_receiver_times_out_and_is_retried(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    _, key = await h.account()
    hook.answer(Reply(200, delay_s=TIMEOUT_S + 1.5), 200)
    analysis_id = await h.submit(key, url)
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
    attempts = await h.deliveries(key, analysis_id)
    assert [a["outcome"] for a in attempts] == ["retrying", "succeeded"]
    assert attempts[0]["status_code"] is None and "No response within" in attempts[0]["error"]
    assert TIMEOUT_S * 1000 * 0.9 <= attempts[0]["duration_ms"] < (TIMEOUT_S + 1) * 1000


async def test_failed_analysis_carries_error_message(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    _, key = await h.account()

    class Undecodable(FakeTranscriber):
        async def transcribe(self, request):  # type: ignore[no-untyped-def]
            raise ValueError("cannot decode")

    analysis_id = await h.submit(key, url)
    await h.process(Undecodable())
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
    body = hook.received[0].json()
    assert body["status"] == "failed"
    assert body["error_message"] == body["metadata"]["error_message"] and body["error_message"]
    assert (await h.deliveries(key, analysis_id))[0]["event_type"] == "analysis.failed"


async def test_rotated_secret_signs_with_both(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    account, key = await h.account()
    old = await h.secret(account)
    r = await h.client.post("/api/v1/webhooks/secret/rotate", headers=account.headers)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and r.json()["previous_secret_expires"] - r.json()["rotated"] == 24 * 3600
    assert await h.secret(account) == new
    hook.secrets = [old, new]
    analysis_id = await h.submit(key, url)
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
    delivery = hook.received[0]
    assert delivery.verified_by == [0, 1]  # a receiver with either secret accepts it
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2


async def test_secret_endpoints_need_a_user_token_and_store_it_encrypted(h: Harness) -> None:
    account, key = await h.account()
    for method, path in (("GET", "/api/v1/webhooks/secret"), ("POST", "/api/v1/webhooks/secret/rotate")):
        r = await h.client.request(method, path, headers={"X-API-Key": key})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    secret = await h.secret(account)
    async with state_of_app(h.app).sessionmaker() as session:
        rows = (await session.exec(select(WebhookSecret))).all()
    assert rows and all(
        secret not in row.secret_encrypted and secret[6:] not in row.secret_encrypted for row in rows
    )
    r = await h.client.get("/api/v1/webhooks/secret?mode=sandbox", headers=account.headers)
    assert r.status_code == 422


async def test_private_webhook_url_refused_at_submission_and_when_set(
    h: Harness, app_factory: Callable
) -> None:
    async with app_factory() as strict:  # no loopback allow-list: production rules
        state = state_of_app(strict._transport.app)  # type: ignore[attr-defined]
        assert state.settings.storage.url_allow == []
        account = await sign_up(strict, strict._transport.app)  # type: ignore[attr-defined]
        key = await create_key(strict, account)
        for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::ffff:169.254.169.254]/"):
            r = await submit(strict, key, webhook_url=url)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url", r.text
        r = await submit(strict, key)
        assert r.status_code == 201
        r = await strict.post(
            f"/api/v1/analysis/{r.json()['id']}/webhook",
            json={"webhook_url": "http://192.168.0.1/x"},
            headers={"X-API-Key": key},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url"


async def test_private_address_refused_at_send_time(h: Harness, fake_dns: Callable) -> None:
    dns = fake_dns({"hooks.example.test": ["93.184.216.34"]})
    _, key = await h.account()
    analysis_id = await h.submit(key, "http://hooks.example.test/hook")
    dns.names["hooks.example.test"] = ["10.0.0.7"]  # DNS rebinding between submission and delivery
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
    [attempt] = await h.deliveries(key, analysis_id)
    assert attempt["outcome"] == "failed" and attempt["error"].startswith("Refused")


async def test_pending_deliveries_survive_a_restart(
    h: Harness, receiver: tuple[Receiver, str], webhook_db: str, tmp_path: Path
) -> None:
    hook, url = receiver
    account, key = await h.account()
    hook.secrets = [await h.secret(account)]
    hook.answer(503)
    analysis_id = await h.submit(key, url)
    await h.process()
    state = state_of_app(h.app)
    # A worker takes the delivery job and dies without a word: its lease runs out.
    [job] = await queue.claim(
        state.sessionmaker, worker_id="crashed", kinds=[WEBHOOK_JOB], lease_s=0.5, limit=1
    )
    assert job.payload["event_id"] == str((await h.events(analysis_id))[0].id)
    await asyncio.sleep(0.6)
    # A fresh process (new engine, new runner) picks it up; the 503 is retried; then it is delivered.
    restarted = create_app(settings_for(webhook_db, tmp_path))  # type: ignore[arg-type]
    async with restarted.router.lifespan_context(restarted):
        await pump(webhook_runner(restarted), lambda: h.finished(analysis_id))
    assert [item.verified_by for item in hook.received] == [[0], [0]]
    assert len(set(hook.msg_ids)) == 1
    async with state.sessionmaker() as session:
        attempts = (
            await session.exec(
                select(WebhookAttempt).where(WebhookAttempt.analysis_id == uuid.UUID(analysis_id))
            )
        ).all()
    assert sorted(a.status_code or 0 for a in attempts) == [200, 503]


async def test_two_hundred_events_delivered_exactly_once(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    account, key = await h.account()
    hook.secrets = [await h.secret(account)]
    ids = [await h.submit(key, url) for _ in range(200)]
    await h.process()

    async def all_delivered() -> bool:
        return len(hook.received) >= 200 and all([await h.finished(i) for i in ids])

    # Two delivery loops (as two dispatcher replicas would) drain the same queue.
    started = time.monotonic()
    await asyncio.gather(*(pump(webhook_runner(h.app, 16), all_delivered, timeout_s=120) for _ in range(2)))
    elapsed = time.monotonic() - started
    counts = Counter(hook.msg_ids)
    assert len(counts) == 200 and set(counts.values()) == {1}
    assert all(item.verified_by == [0] for item in hook.received)
    assert {item.json()["id"] for item in hook.received} == set(ids)
    print(f"200 webhooks delivered in {elapsed:.2f} s ({200 / elapsed:.0f}/s)")


async def test_the_readme_receiver_example(
    h: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/webhook_receiver.py (shown in the README) accepts a real delivery once, refuses a forgery."""
    import importlib.util

    account, key = await h.account()
    monkeypatch.setenv("CALLCOV_WEBHOOK_SECRET", await h.secret(account))
    path = Path(__file__).parents[2] / "examples" / "webhook_receiver.py"
    spec = importlib.util.spec_from_file_location("webhook_receiver_example", path)
    assert spec and spec.loader
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with asgi_in_thread(example.app) as base:
        analysis_id = await h.submit(key, f"{base}/callcov")
        await h.process()
        await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
        [attempt] = await h.deliveries(key, analysis_id)
        assert attempt["status_code"] == 200 and attempt["response_excerpt"] == '{"received":true}'
        assert f"{analysis_id}: missing disclosures" in capsys.readouterr().out
        forged = {
            "webhook-id": "msg_x",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,AAAA",
        }
        async with httpx.AsyncClient() as plain:
            r = await plain.post(f"{base}/callcov", content=b"{}", headers=forged)
        assert r.status_code == 400
