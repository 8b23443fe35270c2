"""Webhook deliveries end to end: real submissions, the real analysis job (with a test double of the
transcriber), the real delivery job over real HTTP to a receiver on loopback that verifies every
request with the ``standardwebhooks`` package: success, retries, receiver down, 4xx, 410, timeouts."""

from __future__ import annotations

import asyncio

import pytest
from conftest import asgi_in_thread, free_port
from sqlmodel import select
from test_pipeline import FakeTranscriber
from webhook_receiver import Receiver, Reply
from webhook_support import (  # noqa: F401  (wapp, wclient, webhook_db: fixtures that h needs)
    RETRY_S,
    TIMEOUT_S,
    Harness,
    h,
    pump,
    receiver,
    wapp,
    wclient,
    webhook_db,
    webhook_runner,
)

from callcov.models import DisabledWebhookUrl
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio


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


async def test_retry_after_of_a_429_is_honoured(h: Harness, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    _, key = await h.account()
    hook.answer(Reply(429, headers=((b"retry-after", b"2"),)), 200)
    analysis_id = await h.submit(key, url)
    await h.process()
    await pump(webhook_runner(h.app), lambda: h.finished(analysis_id))
    first, second = hook.received
    assert second.at - first.at >= 1.9 > RETRY_S  # the receiver's 2 s, not the schedule's 0.3 s
    assert [a["outcome"] for a in await h.deliveries(key, analysis_id)] == ["retrying", "succeeded"]


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
