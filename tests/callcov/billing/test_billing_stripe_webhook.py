"""POST /billing/webhook: events signed exactly as Stripe signs them (``t=<ts>,v1=<HMAC-SHA256 of
"<ts>.<payload>">`` with the endpoint's secret), verified with ``stripe.Webhook.construct_event``,
stored once by event id, processed by a job; replays change nothing, and an event older than the
state already applied does not roll it back."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from billing_support import (
    billing_app,
    run_billing_jobs,
    seed_usage,
    stripe_account,
    stripe_billing,
    stripe_event,
    stripe_signature,
    submit,
    subscription_row,
    update_subscription,
)
from conftest import free_port, job_runners, wake_ups
from fastapi import FastAPI
from sqlmodel import func, select

from callcov.billing.stripe_webhook import STRIPE_EVENT_JOB
from callcov.kit.time import utcnow
from callcov.models import BillingEvent, Invoice, Job
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio
HOOK = "/api/v1/billing/webhook"


@pytest_asyncio.fixture(scope="module")
async def hook_app(settings_factory: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    # Stripe's API is never called here: processing events only changes local state.
    async with billing_app(settings_factory, **stripe_billing(f"http://127.0.0.1:{free_port()}")) as pair:
        yield pair


async def post_event(
    client: httpx.AsyncClient, payload: bytes, signature: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature or stripe_signature(payload)}
    return await client.post(HOOK, content=payload, headers=headers)


async def deliver(app: FastAPI, client: httpx.AsyncClient, payload: bytes) -> httpx.Response:
    """Post a signed event and run its job, as the dispatcher would."""
    r = await post_event(client, payload)
    assert r.status_code == 200, r.text
    event_id = json.loads(payload)["id"]
    async with state_of_app(app).sessionmaker() as session:
        row = (await session.exec(select(BillingEvent).where(BillingEvent.stripe_event_id == event_id))).one()
    await run_billing_jobs(app, STRIPE_EVENT_JOB, "event_id", str(row.id))
    return r


def subscription_object(sub_id: str, customer: str, plan: str, start: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": "active",
        "cancel_at_period_end": False,
        "current_period_start": start,
        "current_period_end": start + 30 * 86400,
        "items": {"object": "list", "data": [{"id": "si_1", "plan": {"id": plan}}]},
        **extra,
    }


def invoice_object(invoice_id: str, sub_id: str, customer: str, status: str, paid: int) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "subscription": sub_id,
        "status": status,
        "amount_due": 4900,
        "amount_paid": paid,
        "currency": "usd",
        "created": int(time.time()),
        "period_start": int(time.time()),
        "period_end": int(time.time()) + 30 * 86400,
        "hosted_invoice_url": f"https://invoice.stripe.test/{invoice_id}",
    }


async def count_rows(app: FastAPI, model: type, **where: object) -> int:
    async with state_of_app(app).sessionmaker() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int((await session.exec(query)).one())


class TestSignature:
    async def test_valid_event_is_stored_and_processed(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        headers, user_id, customer, sub_id = await stripe_account(app, client)
        start = int(time.time())
        obj = subscription_object(sub_id, customer, "callcov_growth_monthly", start)
        r = await deliver(app, client, stripe_event("customer.subscription.updated", obj, created=start))
        assert r.json() == {"received": True, "duplicate": False, "processed": True}
        row = await subscription_row(app, user_id)
        assert (row.tier, row.status, row.stripe_event_at) == ("growth", "active", start)
        body = (await client.get("/api/v1/billing/subscription", headers=headers)).json()
        assert body["current_period_start"] == start and body["minutes_included"] == 5000

    async def test_a_stored_event_wakes_the_billing_runner(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        _, _, customer, sub_id = await stripe_account(app, client)
        obj = subscription_object(sub_id, customer, "callcov_growth_monthly", int(time.time()))
        async with wake_ups(app) as read:
            r = await post_event(client, stripe_event("customer.subscription.updated", obj, created=1))
            assert r.status_code == 200, r.text
            assert await read(1) == [STRIPE_EVENT_JOB]  # the kind, so the billing runner wakes

    async def test_bad_signatures_are_refused_and_nothing_is_stored(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        payload = stripe_event("invoice.paid", {"id": "in_x", "customer": "cus_x"}, created=int(time.time()))
        event_id = json.loads(payload)["id"]
        cases = {
            "wrong secret": stripe_signature(payload, secret="whsec_someone_else"),
            "tampered body": stripe_signature(payload.replace(b"in_x", b"in_y")),
            "too old": stripe_signature(payload, timestamp=int(time.time()) - 3600),
            "garbage": "not-a-signature",
        }
        for case, signature in cases.items():
            r = await post_event(client, payload, signature)
            assert r.status_code == 400, case
            assert r.json()["error"]["code"] == "invalid_signature", case
        r = await client.post(HOOK, content=payload, headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        assert await count_rows(app, BillingEvent, stripe_event_id=event_id) == 0

    async def test_oversized_body_is_refused(self, hook_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
        _, client = hook_app
        payload = b'{"id": "evt_big", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        r = await post_event(client, payload)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    async def test_without_a_webhook_secret_the_endpoint_is_absent(self, client: httpx.AsyncClient) -> None:
        payload = stripe_event("invoice.paid", {"id": "in_x"}, created=int(time.time()))
        r = await client.post(HOOK, content=payload, headers={"Stripe-Signature": stripe_signature(payload)})
        assert r.status_code == 404


class TestOnce:
    async def test_replayed_event_is_stored_once_and_changes_nothing(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        _, user_id, customer, sub_id = await stripe_account(app, client)
        now = int(time.time())
        failed = stripe_event(
            "invoice.payment_failed", invoice_object("in_r1", sub_id, customer, "open", 0), created=now
        )
        await deliver(app, client, failed)
        assert (await subscription_row(app, user_id)).status == "past_due"
        await update_subscription(app, user_id, status="active")  # e.g. paid by another route meanwhile
        r = await post_event(client, failed)
        assert r.status_code == 200 and r.json()["duplicate"] is True
        event_id = json.loads(failed)["id"]
        assert await count_rows(app, BillingEvent, stripe_event_id=event_id) == 1
        async with state_of_app(app).sessionmaker() as session:
            row = (
                await session.exec(select(BillingEvent).where(BillingEvent.stripe_event_id == event_id))
            ).one()
        assert await run_billing_jobs(app, STRIPE_EVENT_JOB, "event_id", str(row.id)) == 0
        assert (await subscription_row(app, user_id)).status == "active"

    async def test_job_run_twice_applies_once(self, hook_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
        app, client = hook_app
        _, user_id, customer, sub_id = await stripe_account(app, client)
        payload = stripe_event(
            "invoice.payment_failed",
            invoice_object("in_t2", sub_id, customer, "open", 0),
            created=int(time.time()),
        )
        await post_event(client, payload)
        state = state_of_app(app)
        async with state.sessionmaker() as session:
            event = (
                await session.exec(
                    select(BillingEvent).where(BillingEvent.stripe_event_id == json.loads(payload)["id"])
                )
            ).one()
            jobs = (await session.exec(select(Job).where(Job.kind == STRIPE_EVENT_JOB))).all()
        mine = [j for j in jobs if j.payload["event_id"] == str(event.id)]
        assert len(mine) == 1
        handler = job_runners(app)["billing"].handlers[STRIPE_EVENT_JOB]
        await handler(mine[0])
        assert (await subscription_row(app, user_id)).status == "past_due"
        await update_subscription(app, user_id, status="active")
        await handler(mine[0])  # a second run (a lease ran out) finds the event processed
        assert (await subscription_row(app, user_id)).status == "active"

    async def test_unlisted_types_are_acknowledged_and_not_processed(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        payload = stripe_event("charge.refunded", {"id": "ch_1"}, created=int(time.time()))
        jobs_before = await count_rows(app, Job, kind=STRIPE_EVENT_JOB)
        r = await post_event(client, payload)
        assert r.status_code == 200 and r.json()["processed"] is False
        async with state_of_app(app).sessionmaker() as session:
            row = (
                await session.exec(
                    select(BillingEvent).where(BillingEvent.stripe_event_id == json.loads(payload)["id"])
                )
            ).one()
        assert row.status == "ignored" and await count_rows(app, Job, kind=STRIPE_EVENT_JOB) == jobs_before


class TestOrder:
    async def test_an_older_subscription_update_does_not_roll_back_a_newer_one(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        _, user_id, customer, sub_id = await stripe_account(app, client)
        t = int(time.time())
        newer = subscription_object(sub_id, customer, "callcov_growth_monthly", t)
        older = subscription_object(sub_id, customer, "callcov_starter_monthly", t - 86400)
        await deliver(app, client, stripe_event("customer.subscription.updated", newer, created=t + 20))
        await deliver(app, client, stripe_event("customer.subscription.updated", older, created=t + 10))
        row = await subscription_row(app, user_id)
        assert (row.tier, row.stripe_event_at) == ("growth", t + 20)
        assert int(row.current_period_start.timestamp()) == t

    async def test_a_late_created_event_does_not_revive_a_deleted_subscription(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        _, user_id, customer, sub_id = await stripe_account(app, client)
        t = int(time.time())
        obj = subscription_object(sub_id, customer, "callcov_starter_monthly", t)
        ended = {**obj, "status": "canceled"}
        await deliver(app, client, stripe_event("customer.subscription.deleted", ended, created=t))
        await deliver(app, client, stripe_event("customer.subscription.created", obj, created=t))
        row = await subscription_row(app, user_id)
        assert (row.tier, row.stripe_subscription_id) == ("free", None)

    async def test_late_payment_failure_after_payment_keeps_it_active(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        headers, user_id, customer, sub_id = await stripe_account(app, client)
        t = int(time.time())
        paid = stripe_event(
            "invoice.paid", invoice_object("in_o1", sub_id, customer, "paid", 4900), created=t + 5
        )
        failed = stripe_event(
            "invoice.payment_failed", invoice_object("in_o1", sub_id, customer, "open", 0), created=t
        )
        await deliver(app, client, paid)
        await deliver(app, client, failed)
        assert (await subscription_row(app, user_id)).status == "active"
        async with state_of_app(app).sessionmaker() as session:
            invoice = (await session.exec(select(Invoice).where(Invoice.stripe_invoice_id == "in_o1"))).one()
        assert (invoice.status, invoice.amount_paid, invoice.provider) == ("paid", 4900, "stripe")
        history = (await client.get("/api/v1/billing/history", headers=headers)).json()
        assert any(i.get("stripe_invoice_id") == "in_o1" for i in history["items"])


class TestConsequences:
    async def test_failed_payment_pauses_live_submissions_until_paid(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        headers, user_id, customer, sub_id = await stripe_account(app, client)
        t = int(time.time())
        failed = invoice_object("in_c1", sub_id, customer, "open", 0)
        await deliver(app, client, stripe_event("invoice.payment_failed", failed, created=t))
        r = await submit(client, headers)
        assert r.status_code == 402 and r.json()["error"]["details"]["status"] == "past_due"
        paid = invoice_object("in_c1", sub_id, customer, "paid", 4900)
        await deliver(app, client, stripe_event("invoice.paid", paid, created=t + 1))
        assert (await submit(client, headers)).status_code == 201

    async def test_deleted_subscription_returns_to_free(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        _, user_id, customer, sub_id = await stripe_account(app, client)
        obj = subscription_object(
            sub_id, customer, "callcov_starter_monthly", int(time.time()), status="canceled"
        )
        await deliver(
            app, client, stripe_event("customer.subscription.deleted", obj, created=int(time.time()))
        )
        row = await subscription_row(app, user_id)
        assert (row.tier, row.status, row.stripe_subscription_id) == ("free", "active", None)
        assert row.stripe_customer_id == customer

    async def test_events_of_unknown_customers_are_ignored(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        obj = subscription_object("sub_nobody", "cus_nobody", "callcov_growth_monthly", int(time.time()))
        payload = stripe_event("customer.subscription.updated", obj, created=int(time.time()))
        await deliver(app, client, payload)
        async with state_of_app(app).sessionmaker() as session:
            row = (
                await session.exec(
                    select(BillingEvent).where(BillingEvent.stripe_event_id == json.loads(payload)["id"])
                )
            ).one()
        assert row.status == "ignored" and row.processed_at is not None

    async def test_period_rollover_from_stripe_resets_minutes(
        self, hook_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = hook_app
        headers, user_id, customer, sub_id = await stripe_account(app, client)
        old_start = utcnow().replace(microsecond=0) - timedelta(days=29)
        await update_subscription(
            app, user_id, current_period_start=old_start, current_period_end=old_start + timedelta(days=30)
        )
        await seed_usage(app, user_id, 1200.0, days_ago=1)
        before = (await client.get("/api/v1/billing/subscription", headers=headers)).json()
        assert before["overage_minutes"] == pytest.approx(200.0)
        new_start = int(time.time())
        obj = subscription_object(sub_id, customer, "callcov_starter_monthly", new_start)
        await deliver(app, client, stripe_event("customer.subscription.updated", obj, created=new_start))
        after = (await client.get("/api/v1/billing/subscription", headers=headers)).json()
        assert (after["minutes_used"], after["overage_minutes"], after["current_period_start"]) == (
            0,
            0,
            new_start,
        )
