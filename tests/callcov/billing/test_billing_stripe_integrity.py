"""Issue 12 (findings 7, 8, 10b) with Stripe: the real SDK against localstripe on loopback, through
``PortalStub`` (an HTTP pass-through that logs what CallCov sends). Cancelling now sends the overage
used so far before the cancellation, which asks Stripe for a final invoice; a failed analysis is
credited; deactivating the account cancels the Stripe subscription the same way.

localstripe ignores ``invoice_now`` and cannot invoice a customer that has no subscription, so the
final invoice itself is checked on the wire: the overage items are sent before the ``DELETE`` that
carries ``invoice_now=true``, and the final report asks for an invoice of the pending items."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from billing_support import *  # noqa: F403  (fixtures)
from billing_support import (
    WAV_MINUTES,
    PortalStub,
    billing_app,
    run_billing_jobs,
    seed_usage,
    stripe_billing,
    stripe_event,
    submit,
    subscription_row,
    tone_wav,
)
from fastapi import FastAPI
from test_billing_integrity import CLOSE_ACCOUNT_JOB, fail_analysis
from test_billing_stripe import stripe_get, subscribed
from test_billing_stripe_webhook import deliver, subscription_object

from callcov.billing import accounts
from callcov.billing.metering import REPORT_USAGE_JOB
from callcov.state import state_of_app

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]
API = "/api/v1/billing"


@pytest_asyncio.fixture(scope="module")
async def stripe_app(
    settings_factory: Any, portal_stub_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with billing_app(settings_factory, **stripe_billing(portal_stub_url)) as pair:
        yield pair


def overage_items(base: str, customer: str) -> list[int]:
    """Amounts of the customer's pending (not yet invoiced) invoice items that are not prorations."""
    items = stripe_get(base, "invoiceitems", customer=customer)["data"]
    return sorted(item["amount"] for item in items if not item["proration"])


def sent(since: int, method: str, path: str, needle: str = "") -> list[tuple[int, str, str]]:
    """(position, path, body) of the requests CallCov sent to Stripe since ``since``."""
    return [
        (i, p, body)
        for i, (m, p, body) in enumerate(PortalStub.requests[since:])
        if m == method and p.startswith(path) and needle in p + body
    ]


async def report(app: FastAPI, user_id: Any) -> int:
    return await run_billing_jobs(app, REPORT_USAGE_JOB, "user_id", str(user_id))


def assert_cancelled_with_final_invoice(since: int, sub_id: str, customer: str, amount: int) -> None:
    [(posted, _, body)] = sent(since, "POST", "/v1/invoiceitems", customer)
    [(deleted, query, _)] = sent(since, "DELETE", f"/v1/subscriptions/{sub_id}")
    assert f"amount={amount}" in body and posted < deleted  # the overage goes on the final invoice
    assert "invoice_now=true" in query and "prorate=false" in query


class TestCancelNow:
    async def test_overage_is_sent_before_a_cancellation_that_invoices_it(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        row = await subscription_row(app, user_id)
        customer, sub_id = row.stripe_customer_id or "", row.stripe_subscription_id or ""
        await seed_usage(app, user_id, 1020.0)
        assert (await submit(client, headers)).status_code == 201
        await report(app, user_id)
        first = round((20 + WAV_MINUTES) * 5)
        assert overage_items(localstripe_url, customer) == [first]
        await seed_usage(app, user_id, 10.0)  # more overage, not reported yet when the plan ends
        since = len(PortalStub.requests)
        r = await client.post(f"{API}/subscription/cancel", json={"at_period_end": False}, headers=headers)
        assert r.status_code == 200 and r.json()["tier"] == "free"
        assert_cancelled_with_final_invoice(since, sub_id, customer, 50)
        assert overage_items(localstripe_url, customer) == sorted([first, 50])
        # The final report of the ended subscription sends nothing more, and asks for an invoice of
        # whatever is still pending (Stripe's final invoice took it; localstripe answers 404).
        since = len(PortalStub.requests)
        assert await report(app, user_id) == 1
        assert sent(since, "POST", "/v1/invoiceitems") == []
        [(_, _, body)] = sent(since, "POST", "/v1/invoices", customer)
        assert "pending_invoice_items_behavior=include" in body


class TestRefund:
    async def test_a_failed_analysis_is_credited_in_stripe(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        customer = (await subscription_row(app, user_id)).stripe_customer_id or ""
        await seed_usage(app, user_id, 1020.0)
        analysis_id = (await submit(client, headers, tone_wav(60.0))).json()["id"]
        await report(app, user_id)
        assert overage_items(localstripe_url, customer) == [105]
        await fail_analysis(app, analysis_id)
        await report(app, user_id)
        await fail_analysis(app, analysis_id)
        await report(app, user_id)
        assert overage_items(localstripe_url, customer) == [-5, 105]


class TestDeactivation:
    async def test_deleting_the_account_cancels_the_stripe_subscription(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        row = await subscription_row(app, user_id)
        customer, sub_id = row.stripe_customer_id or "", row.stripe_subscription_id or ""
        await seed_usage(app, user_id, 1010.0)
        assert (await client.delete("/api/v1/users/me", headers=headers)).status_code == 200
        since = len(PortalStub.requests)
        assert await run_billing_jobs(app, CLOSE_ACCOUNT_JOB, "user_id", str(user_id)) == 1
        assert stripe_get(localstripe_url, f"subscriptions/{sub_id}")["status"] == "canceled"
        assert_cancelled_with_final_invoice(since, sub_id, customer, 50)
        row = await subscription_row(app, user_id)
        assert (row.tier, row.stripe_subscription_id) == ("free", None)
        # A second run (a duplicate of the job) finds the account on free: nothing more is sent.
        since = len(PortalStub.requests)
        state = state_of_app(app)
        await accounts.close_account(state.sessionmaker, state.settings.billing, user_id)
        assert sent(since, "DELETE", "/v1/subscriptions") == []


class TestChangesMadeInStripe:
    async def test_a_plan_changed_in_the_portal_settles_the_overage_at_the_old_plan(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        row = await subscription_row(app, user_id)
        customer, sub_id = row.stripe_customer_id or "", row.stripe_subscription_id or ""
        await seed_usage(app, user_id, 1100.0)  # 100 overage minutes on starter, not reported yet
        start = int(row.current_period_start.timestamp())
        obj = subscription_object(sub_id, customer, "callcov_growth_monthly", start)
        later = max(int(time.time()), start) + 60  # a change made in the portal a minute later
        await deliver(app, client, stripe_event("customer.subscription.updated", obj, created=later))
        assert (await subscription_row(app, user_id)).tier == "growth"
        assert await report(app, user_id) == 1
        assert overage_items(localstripe_url, customer) == [500]  # at starter's rate, not growth's

    async def test_a_subscription_ended_by_stripe_gets_its_final_invoice(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        row = await subscription_row(app, user_id)
        customer, sub_id = row.stripe_customer_id or "", row.stripe_subscription_id or ""
        start = int(row.current_period_start.timestamp())
        ended = subscription_object(sub_id, customer, "callcov_starter_monthly", start, status="canceled")
        payload = stripe_event("customer.subscription.deleted", ended, created=start + 30 * 86400)
        await deliver(app, client, payload)
        assert (await subscription_row(app, user_id)).tier == "free"
        since = len(PortalStub.requests)
        assert await report(app, user_id) == 1  # the final report, queued by the event
        assert sent(since, "GET", "/v1/invoiceitems", customer)
