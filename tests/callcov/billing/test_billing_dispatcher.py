"""The dispatcher deployment's class (without Ray: its handles are lazy) runs the billing jobs: a
signed Stripe event posted to the API is processed by the dispatcher's billing runner, beside the
analysis runner. On its own SQLite database, so no other test's queued jobs are claimed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from billing_support import (
    WEBHOOK_SECRET,
    stripe_account,
    stripe_event,
    stripe_signature,
    subscription_row,
)
from conftest import running, sqlite_settings

from callcov.main import create_app

pytestmark = [pytest.mark.asyncio, pytest.mark.sqlite]


async def test_dispatcher_processes_stripe_events(tmp_path: Path) -> None:
    from deployments.dispatcher import Dispatcher

    settings = sqlite_settings(
        tmp_path,
        ratelimit={"enabled": False},
        worker={"poll_interval_s": 0.1},
        billing={"stripe_webhook_secret": WEBHOOK_SECRET},
    )
    app = create_app(settings)
    dispatcher = Dispatcher.__new__(Dispatcher)  # Serve awaits the async __init__; so do we
    await Dispatcher.__init__(dispatcher, settings)  # type: ignore[misc]
    try:
        async with running(app) as client:
            _, user_id, customer, sub_id = await stripe_account(app, client)
            invoice = {
                "id": "in_d1",
                "customer": customer,
                "subscription": sub_id,
                "status": "open",
                "amount_due": 4900,
                "amount_paid": 0,
                "currency": "usd",
            }
            payload = stripe_event("invoice.payment_failed", invoice, created=int(time.time()))
            r = await client.post(
                "/api/v1/billing/webhook",
                content=payload,
                headers={"Stripe-Signature": stripe_signature(payload)},
            )
            assert r.status_code == 200 and r.json()["processed"] is True
            deadline = time.monotonic() + 15
            while (await subscription_row(app, user_id)).status != "past_due":
                assert time.monotonic() < deadline, "the dispatcher did not process the event"
                await asyncio.sleep(0.1)
    finally:
        dispatcher.stop.set()
        await asyncio.wait_for(asyncio.gather(*dispatcher.tasks, return_exceptions=True), 10)
        await dispatcher.engine.dispose()
