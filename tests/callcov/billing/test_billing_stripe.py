"""Billing with Stripe: the real SDK over real HTTP against localstripe on loopback (customers, payment
methods, plans, subscriptions, invoice items). The customer portal, which localstripe lacks, goes
through ``PortalStub``, an HTTP-layer stub in front of localstripe (named so in the test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from billing_support import *  # noqa: F403  (fixtures)
from billing_support import (
    STRIPE_KEY,
    WAV_MINUTES,
    PortalStub,
    billing_app,
    new_account,
    run_billing_jobs,
    seed_usage,
    stripe_billing,
    submit,
    subscription_row,
)
from conftest import free_port
from fastapi import FastAPI
from sqlmodel import select

from callcov.billing import usage_reports
from callcov.billing.metering import REPORT_USAGE_JOB
from callcov.models import UsageRecord, UsageReport
from callcov.state import state_of_app

pytestmark = [
    pytest.mark.asyncio,
    # stripe's HTTPX client uploads with data=bytes; httpx deprecates that form.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]
API = "/api/v1/billing"
VISA, DECLINED = "4242424242424242", "4000000000000002"


@pytest_asyncio.fixture(scope="module")
async def stripe_app(
    settings_factory: Any, localstripe_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with billing_app(settings_factory, **stripe_billing(localstripe_url)) as pair:
        yield pair


def stripe_get(base: str, path: str, **params: str) -> dict[str, Any]:
    r = httpx.get(f"{base}/v1/{path}", params=params, auth=(STRIPE_KEY, ""))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def payment_method(base: str, number: str = VISA) -> str:
    """A card PaymentMethod, created the way Stripe.js would on the client."""
    r = httpx.post(
        f"{base}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2031",
            "card[cvc]": "123",
        },
        auth=(STRIPE_KEY, ""),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def subscribed(
    app: FastAPI, client: httpx.AsyncClient, base: str, tier: str = "starter"
) -> tuple[dict[str, str], uuid.UUID, dict[str, Any]]:
    account, user_id = await new_account(client, app)
    body = {"tier": tier, "payment_method": payment_method(base)}
    r = await client.post(f"{API}/subscription", json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    return account.headers, user_id, r.json()


class TestSubscribe:
    async def test_creates_customer_and_subscription_in_stripe(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        _, user_id, body = await subscribed(app, client, localstripe_url)
        assert (body["tier"], body["status"], body["provider"]) == ("starter", "active", "stripe")
        row = await subscription_row(app, user_id)
        assert row.stripe_customer_id and row.stripe_subscription_id
        remote = stripe_get(localstripe_url, f"subscriptions/{row.stripe_subscription_id}")
        assert remote["status"] == "active" and remote["plan"]["id"] == "callcov_starter_monthly"
        assert remote["customer"] == row.stripe_customer_id
        assert (body["current_period_start"], body["current_period_end"]) == (
            remote["current_period_start"],
            remote["current_period_end"],
        )
        customer = stripe_get(localstripe_url, f"customers/{row.stripe_customer_id}")
        assert customer["metadata"]["account_id"] == str(user_id)
        [invoice] = stripe_get(localstripe_url, "invoices", customer=row.stripe_customer_id)["data"]
        assert (invoice["status"], invoice["amount_paid"]) == ("paid", 4900)

    async def test_declined_card_is_402_and_stays_free(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        account, user_id = await new_account(client, app)
        body = {"tier": "starter", "payment_method": payment_method(localstripe_url, DECLINED)}
        r = await client.post(f"{API}/subscription", json=body, headers=account.headers)
        assert r.status_code == 402, r.text
        assert r.json()["error"]["code"] == "payment_failed"
        row = await subscription_row(app, user_id)
        assert (row.tier, row.stripe_subscription_id) == ("free", None)


class TestPaymentMethod:
    async def test_paid_plan_without_any_payment_method_is_400(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = stripe_app
        account, user_id = await new_account(client, app)
        r = await client.post(f"{API}/subscription/update", json={"tier": "starter"}, headers=account.headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "payment_method_required"
        assert (await subscription_row(app, user_id)).tier == "free"

    async def test_the_customers_default_method_is_used_again(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        r = await client.post(f"{API}/subscription/cancel", json={"at_period_end": False}, headers=headers)
        assert r.json()["tier"] == "free"
        r = await client.post(f"{API}/subscription", json={"tier": "growth"}, headers=headers)
        assert r.status_code == 201, r.text
        assert (r.json()["tier"], r.json()["provider"]) == ("growth", "stripe")


class TestChanges:
    async def test_upgrade_changes_the_stripe_plan_with_proration(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        r = await client.post(f"{API}/subscription/update", json={"tier": "growth"}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["tier"] == "growth" and r.json()["minutes_included"] == 5000
        row = await subscription_row(app, user_id)
        remote = stripe_get(localstripe_url, f"subscriptions/{row.stripe_subscription_id}")
        assert remote["plan"]["id"] == "callcov_growth_monthly"
        pending = stripe_get(localstripe_url, "invoiceitems", customer=row.stripe_customer_id)["data"]
        assert any(item["proration"] and item["amount"] == -4900 for item in pending)

    async def test_cancel_at_period_end_reactivate_and_cancel_now(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        sub_id = (await subscription_row(app, user_id)).stripe_subscription_id
        r = await client.post(f"{API}/subscription/cancel", headers=headers)
        assert r.json()["cancel_at_period_end"] is True
        assert stripe_get(localstripe_url, f"subscriptions/{sub_id}")["cancel_at_period_end"] is True
        r = await client.post(f"{API}/subscription/reactivate", headers=headers)
        assert r.json()["cancel_at_period_end"] is False
        assert stripe_get(localstripe_url, f"subscriptions/{sub_id}")["cancel_at_period_end"] is False
        r = await client.post(f"{API}/subscription/cancel", json={"at_period_end": False}, headers=headers)
        assert r.status_code == 200 and r.json()["tier"] == "free"
        assert stripe_get(localstripe_url, f"subscriptions/{sub_id}")["status"] == "canceled"
        assert (await subscription_row(app, user_id)).stripe_subscription_id is None


class TestUsageReporting:
    async def test_overage_is_reported_once_as_invoice_items(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        customer = (await subscription_row(app, user_id)).stripe_customer_id
        await seed_usage(app, user_id, 1009.99)
        assert (await submit(client, headers)).status_code == 201
        assert await run_billing_jobs(app, REPORT_USAGE_JOB, "user_id", str(user_id)) == 1
        items = [
            i
            for i in stripe_get(localstripe_url, "invoiceitems", customer=customer)["data"]
            if not i["proration"]
        ]
        expected = round((1009.99 + WAV_MINUTES - 1000) * 5)  # cents: 10.02 overage minutes at 5 cents
        assert [i["amount"] for i in items] == [expected] and expected == 50
        async with state_of_app(app).sessionmaker() as session:
            records = (await session.exec(select(UsageRecord).where(UsageRecord.user_id == user_id))).all()
        assert len(records) == 2 and all(r.reported_at is not None for r in records)
        # More overage: only the difference of the period's cost is sent.
        await seed_usage(app, user_id, 2.0)
        assert (await submit(client, headers)).status_code == 201
        await run_billing_jobs(app, REPORT_USAGE_JOB, "user_id", str(user_id))
        items = [
            i
            for i in stripe_get(localstripe_url, "invoiceitems", customer=customer)["data"]
            if not i["proration"]
        ]
        total = round((1009.99 + 2.0 + 2 * WAV_MINUTES - 1000) * 5)
        assert sorted(i["amount"] for i in items) == sorted([50, total - 50])

    async def test_a_failed_report_stays_pending_and_is_resent(
        self, stripe_app: tuple[FastAPI, httpx.AsyncClient], localstripe_url: str
    ) -> None:
        app, client = stripe_app
        headers, user_id, _ = await subscribed(app, client, localstripe_url)
        customer = (await subscription_row(app, user_id)).stripe_customer_id
        await seed_usage(app, user_id, 1020.0)
        assert (await submit(client, headers)).status_code == 201
        state = state_of_app(app)
        period_start = (await subscription_row(app, user_id)).current_period_start
        down = state.settings.billing.model_copy(
            update={"stripe_api_base": f"http://127.0.0.1:{free_port()}"}
        )
        with pytest.raises(Exception):  # noqa: B017  (Stripe unreachable: the job would be retried)
            await usage_reports.run(state.sessionmaker, down, user_id, period_start)
        async with state.sessionmaker() as session:
            [report] = (await session.exec(select(UsageReport).where(UsageReport.user_id == user_id))).all()
            records = (await session.exec(select(UsageRecord).where(UsageRecord.user_id == user_id))).all()
        assert report.status == "pending" and all(r.reported_at is None for r in records)
        await usage_reports.run(state.sessionmaker, state.settings.billing, user_id, period_start)
        items = [
            i
            for i in stripe_get(localstripe_url, "invoiceitems", customer=customer)["data"]
            if not i["proration"]
        ]
        assert [i["amount"] for i in items] == [report.amount] and report.amount == round(
            (20 + WAV_MINUTES) * 5
        )
        async with state.sessionmaker() as session:
            done = await session.get(UsageReport, report.id)
            records = (await session.exec(select(UsageRecord).where(UsageRecord.user_id == user_id))).all()
        assert (
            done is not None and done.status == "confirmed" and done.stripe_invoice_item_id == items[0]["id"]
        )
        assert all(r.reported_at is not None for r in records)


class TestCustomerPortal:
    async def test_customer_portal_via_http_stub(
        self, settings_factory: Any, portal_stub_url: str, localstripe_url: str
    ) -> None:
        """localstripe has no billing portal: ``PortalStub`` (an HTTP stub) answers that one endpoint
        and forwards every other Stripe call to localstripe."""
        billing = stripe_billing(portal_stub_url, portal_return_url="https://app.callcov.test/billing")
        async with billing_app(settings_factory, **billing) as (app, client):
            account, user_id = await new_account(client, app)
            r = await client.get(f"{API}/customer-portal", headers=account.headers)
            assert r.status_code == 200, r.text
            session = PortalStub.sessions[-1]
            assert r.json()["url"] == session["url"]
            customer = (await subscription_row(app, user_id)).stripe_customer_id
            assert customer and session["customer"] == customer
            assert session["return_url"] == "https://app.callcov.test/billing"
            assert stripe_get(localstripe_url, f"customers/{customer}")["email"] == account.email


class TestStripeDown:
    @pytest.mark.parametrize("create_plans", [True, False])
    async def test_unreachable_stripe_is_503_and_changes_nothing(
        self, settings_factory: Any, create_plans: bool
    ) -> None:
        billing = stripe_billing(f"http://127.0.0.1:{free_port()}", stripe_create_plans=create_plans)
        async with billing_app(settings_factory, **billing) as (app, client):
            account, user_id = await new_account(client, app)
            body = {"tier": "starter", "payment_method": "pm_card_visa"}
            r = await client.post(f"{API}/subscription", json=body, headers=account.headers)
            assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
            assert "Traceback" not in r.text
            assert (await subscription_row(app, user_id)).tier == "free"
            r = await client.get(f"{API}/customer-portal", headers=account.headers)
            assert r.status_code == 503
