"""Webhook secrets (per mode, encrypted, rotation), SSRF refusals at submission and at send time,
restarts with deliveries pending, 200 events delivered exactly once, and the README's receiver."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import asgi_in_thread, create_key, sign_up
from sqlmodel import select
from test_submission import submit
from webhook_receiver import Receiver
from webhook_support import (  # noqa: F401  (wapp, wclient, webhook_db: fixtures that h needs)
    Harness,
    h,
    pump,
    receiver,
    settings_for,
    wapp,
    wclient,
    webhook_db,
    webhook_runner,
)

from callcov.main import create_app
from callcov.models import WebhookAttempt, WebhookSecret
from callcov.state import state_of_app
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker import queue

pytestmark = pytest.mark.asyncio


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
        assert state.settings.network.url_allow == []
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
