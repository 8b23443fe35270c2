"""End to end over real HTTP: CallCov in a uvicorn process configured for Stripe (localstripe on
loopback), and localstripe delivering its own webhooks to ``/billing/webhook``, signed by localstripe
with the endpoint secret (an independent implementation of Stripe's signing). The events are stored
once and the billing jobs keep the local state in step."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from billing_support import *  # noqa: F403  (fixtures)
from billing_support import STRIPE_KEY, WEBHOOK_SECRET, run_billing_jobs, stripe_billing, stripe_signature
from conftest import PASSWORD, running, server_env, token_in, unique_email, uvicorn_server
from fastapi import FastAPI
from sqlmodel import col, select

from callcov.billing.stripe_webhook import STRIPE_EVENT_JOB
from callcov.main import create_app
from callcov.models import BillingEvent, Subscription
from callcov.state import state_of_app

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]
EVENTS = ["customer.subscription.created", "customer.subscription.deleted"]


@pytest_asyncio.fixture(scope="module")
async def local_app(settings_factory: Any, localstripe_url: str) -> AsyncIterator[FastAPI]:
    """The same database and settings as the server, for reading rows and running billing jobs."""
    app = create_app(settings_factory(billing=stripe_billing(localstripe_url)))
    async with running(app):
        yield app


def billing_env(pg_url: str, localstripe_url: str) -> dict[str, str]:
    return server_env(
        pg_url,
        CALLCOV_RATELIMIT__ENABLED="false",
        CALLCOV_BILLING__STRIPE_SECRET_KEY=STRIPE_KEY,
        CALLCOV_BILLING__STRIPE_API_BASE=localstripe_url,
        CALLCOV_BILLING__STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        CALLCOV_BILLING__STRIPE_CREATE_PLANS="true",
    )


def sign_up_over_http(server: str, pg_url: str) -> str:
    email = unique_email()
    assert (
        httpx.post(f"{server}/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code
        == 201
    )
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT body_text FROM email_messages WHERE to_address = %s", (email,)).fetchone()
    assert row is not None
    tokens = httpx.post(f"{server}/api/v1/auth/verify-email", json={"code": token_in(row[0])}).json()
    return str(tokens["access_token"])


async def wait_for_event(app: FastAPI, kind: str, object_id: str, timeout_s: float = 15) -> BillingEvent:
    deadline = time.monotonic() + timeout_s
    while True:
        async with state_of_app(app).sessionmaker() as session:
            rows = (
                await session.exec(
                    select(BillingEvent)
                    .where(BillingEvent.type == kind)
                    .order_by(col(BillingEvent.created_at))
                )
            ).all()
        found = [r for r in rows if r.payload["data"]["object"]["id"] == object_id]
        if found:
            assert len(found) == 1
            return found[0]
        assert time.monotonic() < deadline, f"localstripe did not deliver {kind} for {object_id}"
        await asyncio.sleep(0.2)


async def test_localstripe_signed_events_keep_state_in_step(
    local_app: FastAPI, pg_url: str, localstripe_url: str
) -> None:

    with uvicorn_server(billing_env(pg_url, localstripe_url)) as server:
        hook = {"url": f"{server}/api/v1/billing/webhook", "secret": WEBHOOK_SECRET, "events": EVENTS}
        assert httpx.post(f"{localstripe_url}/_config/webhooks/callcov_e2e", json=hook).status_code == 200
        try:
            await _subscribe_and_cancel(local_app, server, pg_url, localstripe_url)
        finally:  # localstripe cannot forget a webhook: subscribe it to no event type
            httpx.post(f"{localstripe_url}/_config/webhooks/callcov_e2e", json={**hook, "events": []})


async def _subscribe_and_cancel(local_app: FastAPI, server: str, pg_url: str, localstripe_url: str) -> None:
    headers = {"Authorization": f"Bearer {sign_up_over_http(server, pg_url)}"}
    pm = httpx.post(
        f"{localstripe_url}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2031",
            "card[cvc]": "123",
        },
        auth=(STRIPE_KEY, ""),
    ).json()["id"]
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=30) as client:
        r = await client.post("/api/v1/billing/subscription", json={"tier": "growth", "payment_method": pm})
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        async with state_of_app(local_app).sessionmaker() as session:
            sub = (await session.exec(select(Subscription).where(col(Subscription.user_id) == user_id))).one()
        stripe_sub = sub.stripe_subscription_id
        assert stripe_sub
        created = await wait_for_event(local_app, "customer.subscription.created", stripe_sub)
        assert await run_billing_jobs(local_app, STRIPE_EVENT_JOB, "event_id", str(created.id)) == 1
        after_created = (await client.get("/api/v1/billing/subscription")).json()
        assert (after_created["tier"], after_created["status"]) == ("growth", "active")
        r = await client.post("/api/v1/billing/subscription/cancel", json={"at_period_end": False})
        assert r.status_code == 200 and r.json()["tier"] == "free"
        deleted = await wait_for_event(local_app, "customer.subscription.deleted", stripe_sub)
        assert await run_billing_jobs(local_app, STRIPE_EVENT_JOB, "event_id", str(deleted.id)) == 1
        # Redelivering the stored event (same id, as Stripe retries) is acknowledged and queues nothing.
        raw = json.dumps(deleted.payload).encode()
        r = await client.post(
            "/api/v1/billing/webhook", content=raw, headers={"Stripe-Signature": stripe_signature(raw)}
        )
        assert r.json()["duplicate"] is True
        final = (await client.get("/api/v1/billing/subscription")).json()
        assert (final["tier"], final["status"], final["cancel_at_period_end"]) == (
            "free",
            "active",
            False,
        )
    async with state_of_app(local_app).sessionmaker() as session:
        events = (
            await session.exec(select(BillingEvent).where(col(BillingEvent.id).in_([created.id, deleted.id])))
        ).all()
    assert {e.status for e in events} == {"processed"}
