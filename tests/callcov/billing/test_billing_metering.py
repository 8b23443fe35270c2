"""Plans and metering on the local ledger (the embedded default), against PostgreSQL: minutes recorded
once per live analysis, nothing for test mode or idempotent replays, 402 before any work is queued, the
free plan's analysis level, the concurrency of the limit check, and the period roll-over."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from billing_support import (
    WAV_MINUTES,
    new_account,
    seed_usage,
    submit,
    subscription_row,
    update_subscription,
)
from conftest import count, create_key
from fastapi import FastAPI
from sqlmodel import select

from callcov.kit.time import utcnow
from callcov.models import Analysis, Invoice, Job, UsageRecord
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio
API = "/api/v1/billing"


class TestTiers:
    async def test_public_plans_match_the_contract(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/tiers")
        assert r.status_code == 200
        tiers = {t["tier"]: t for t in r.json()["tiers"]}
        assert [t["tier"] for t in r.json()["tiers"]] == ["free", "starter", "growth"]
        assert (tiers["free"]["price_monthly"], tiers["free"]["minutes_included"]) == (0, 500)
        assert tiers["free"]["overage_allowed"] is False and tiers["free"]["overage_rate"] is None
        assert tiers["free"]["analysis_level"] == "compliance"
        assert (tiers["starter"]["price_monthly"], tiers["starter"]["minutes_included"]) == (49, 1000)
        assert tiers["starter"]["overage_rate"] == 0.05 and tiers["starter"]["analysis_level"] == "full"
        assert (tiers["growth"]["price_monthly"], tiers["growth"]["minutes_included"]) == (199, 5000)
        assert tiers["growth"]["overage_rate"] == 0.04 and tiers["growth"]["priority_processing"] is True


class TestNewAccount:
    async def test_starts_on_free_with_nothing_used(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, user_id = await new_account(client, app)
        r = await client.get(f"{API}/subscription", headers=account.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "subscription" and body["livemode"] is True
        assert (body["tier"], body["status"], body["provider"]) == ("free", "active", "local")
        assert (body["minutes_included"], body["minutes_used"], body["minutes_remaining"]) == (500, 0, 500)
        assert body["user_id"] == str(user_id) and isinstance(body["created"], int)
        assert body["current_period_end"] > body["current_period_start"]
        assert body["tier_info"]["name"] == "Free"

    async def test_requires_a_credential(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(f"{API}/subscription")).status_code == 401


class TestMetering:
    async def test_live_submission_records_its_minutes_once(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        key = await create_key(client, account, "live")
        r = await submit(client, {"X-API-Key": key})
        assert r.status_code == 201, r.text
        assert await count(app, UsageRecord, user_id=user_id) == 1
        sub = (await client.get(f"{API}/subscription", headers={"X-API-Key": key})).json()
        assert sub["minutes_used"] == pytest.approx(WAV_MINUTES, abs=1e-4)
        summary = (await client.get(f"{API}/subscription/summary", headers={"X-API-Key": key})).json()
        assert summary["usage"]["analysis_count"] == 1
        assert summary["usage"]["usage_percentage"] == pytest.approx(100 * WAV_MINUTES / 500, abs=0.01)
        usage = (await client.get(f"{API}/usage", headers={"X-API-Key": key})).json()
        assert usage["metrics"]["minutes_analyzed"] == pytest.approx(WAV_MINUTES, abs=1e-4)
        assert usage["limits"]["minutes_limit"] == 500 and usage["costs"]["total"] == 0
        history = (await client.get(f"{API}/history", headers={"X-API-Key": key})).json()
        assert history["total"] == 1 and history["items"][0]["object"] == "usage_record"
        assert history["items"][0]["analysis_id"] == r.json()["id"]

    async def test_idempotent_replay_records_nothing(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, user_id = await new_account(client, app)
        key = await create_key(client, account, "live")
        headers = {"X-API-Key": key, "Idempotency-Key": "billing-replay-1"}
        first, second = await submit(client, headers), await submit(client, headers)
        assert first.status_code == second.status_code == 201
        assert second.headers.get("Idempotent-Replayed") == "true"
        assert await count(app, UsageRecord, user_id=user_id) == 1

    async def test_test_mode_records_nothing_and_ignores_the_live_limit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await seed_usage(app, user_id, 500.0)
        test_key = await create_key(client, account, "test")
        r = await submit(client, {"X-API-Key": test_key})
        assert r.status_code == 201, r.text
        assert await count(app, UsageRecord, user_id=user_id) == 1  # the seeded one only
        view = (await client.get(f"{API}/subscription", headers={"X-API-Key": test_key})).json()
        assert view["livemode"] is False and view["minutes_used"] == 0
        history = (await client.get(f"{API}/history", headers={"X-API-Key": test_key})).json()
        assert history["total"] == 0

    async def test_free_plan_over_its_minutes_is_refused_before_any_work(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await seed_usage(app, user_id, 499.99)
        jobs_before = await count(app, Job)
        r = await submit(client, account.headers)
        assert r.status_code == 402, r.text
        error = r.json()["error"]
        assert error["code"] == "usage_limit_exceeded"
        assert (
            error["details"]["minutes_included"] == 500 and error["details"]["reason"] == "minutes_exhausted"
        )
        assert await count(app, Analysis, user_id=user_id) == 1  # the seeded one only
        assert await count(app, UsageRecord, user_id=user_id) == 1
        assert await count(app, Job) == jobs_before

    async def test_exactly_up_to_the_limit_is_accepted(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, user_id = await new_account(client, app)
        await seed_usage(app, user_id, 500 - WAV_MINUTES)
        assert (await submit(client, account.headers)).status_code == 201
        assert (await submit(client, account.headers)).status_code == 402

    async def test_free_plan_analyses_are_compliance_level(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        r = await submit(client, account.headers)
        async with state_of_app(app).sessionmaker() as session:
            row = await session.get(Analysis, r.json()["id"])
        assert row is not None and row.analysis_level == "compliance"
        await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        r = await submit(client, account.headers)
        async with state_of_app(app).sessionmaker() as session:
            row = await session.get(Analysis, r.json()["id"])
        assert row is not None and row.analysis_level == "full"

    async def test_past_due_refuses_live_submissions(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, user_id = await new_account(client, app)
        await client.get(f"{API}/subscription", headers=account.headers)
        await update_subscription(app, user_id, tier="starter", status="past_due")
        r = await submit(client, account.headers)
        assert r.status_code == 402
        assert r.json()["error"]["code"] == "usage_limit_exceeded"
        assert (
            "payment" in r.json()["error"]["message"] and r.json()["error"]["details"]["status"] == "past_due"
        )
        test_key = await create_key(client, account, "test")
        assert (await submit(client, {"X-API-Key": test_key})).status_code == 201


class TestOverage:
    async def test_starter_overage_is_counted_and_priced(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        assert (
            await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        ).status_code == 201
        await seed_usage(app, user_id, 1010.0)
        assert (await submit(client, account.headers)).status_code == 201
        sub = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        assert sub["overage_minutes"] == pytest.approx(10 + WAV_MINUTES, abs=1e-4)
        assert sub["minutes_remaining"] == 0
        summary = (await client.get(f"{API}/subscription/summary", headers=account.headers)).json()
        assert summary["estimated_overage_cost"] == pytest.approx(0.50, abs=0.005)  # 10.03 min at $0.05
        usage = (await client.get(f"{API}/usage", headers=account.headers)).json()
        assert usage["costs"]["minutes_cost"] == summary["estimated_overage_cost"]
        assert usage["costs"]["total"] == pytest.approx(49 + summary["estimated_overage_cost"])


class TestConcurrency:
    async def test_concurrent_submissions_never_pass_the_free_limit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """100 concurrent live submissions with 0.5 minute left: exactly the 15 that fit are accepted,
        and minutes used is the seed plus the sum of the accepted analyses' durations."""
        account, user_id = await new_account(client, app)
        await seed_usage(app, user_id, 499.5)
        responses = await asyncio.gather(*(submit(client, account.headers) for _ in range(100)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 402}, statuses
        accepted = [r.json() for r in responses if r.status_code == 201]
        assert len(accepted) == 15  # 15 x 2 s = 0.5 min; a 16th would pass 500
        sub = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        durations = sum(a["call"]["duration_ms"] for a in accepted) / 60000
        assert sub["minutes_used"] == pytest.approx(499.5 + durations, abs=1e-4)
        assert sub["minutes_used"] <= 500
        assert await count(app, UsageRecord, user_id=user_id) == 16


class TestRollOver:
    async def test_a_new_period_resets_the_included_minutes_and_invoices_overage(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        await seed_usage(app, user_id, 1100.0, days_ago=20)
        start = utcnow().replace(microsecond=0) - timedelta(days=31)
        await update_subscription(
            app, user_id, current_period_start=start, current_period_end=start + timedelta(days=30)
        )
        sub = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        assert sub["minutes_used"] == 0 and sub["minutes_remaining"] == 1000
        assert sub["current_period_start"] == int((start + timedelta(days=30)).timestamp())
        async with state_of_app(app).sessionmaker() as session:
            invoices = (await session.exec(select(Invoice).where(Invoice.user_id == user_id))).all()
        amounts = sorted(i.amount_due for i in invoices)
        assert amounts == [4900, 4900 + 500]  # first period; next period + 100 overage minutes at 5 cents
        row = await subscription_row(app, user_id)
        assert row.tier == "starter"


class TestPriority:
    async def test_growth_jobs_are_queued_ahead(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        free = (await submit(client, account.headers)).json()["id"]
        await client.post(f"{API}/subscription", json={"tier": "growth"}, headers=account.headers)
        growth = (await submit(client, account.headers)).json()["id"]
        async with state_of_app(app).sessionmaker() as session:
            jobs = {
                job.payload["analysis_id"]: job
                for job in (await session.exec(select(Job).where(Job.kind == "analysis"))).all()
            }
        assert abs(jobs[free].created_at - jobs[free].run_after) < timedelta(seconds=1)
        head_start = jobs[growth].created_at - jobs[growth].run_after
        assert timedelta(minutes=10) - timedelta(seconds=1) < head_start < timedelta(minutes=10, seconds=1)
        assert jobs[growth].run_after < jobs[free].run_after


class TestOpenAPI:
    async def test_documents_billing_and_the_402(self, client: httpx.AsyncClient) -> None:
        doc = (await client.get("/api/v1/openapi.json")).json()
        paths = doc["paths"]
        for path in (
            "/api/v1/billing/tiers",
            "/api/v1/billing/subscription",
            "/api/v1/billing/subscription/update",
            "/api/v1/billing/subscription/cancel",
            "/api/v1/billing/subscription/reactivate",
            "/api/v1/billing/subscription/summary",
            "/api/v1/billing/usage",
            "/api/v1/billing/history",
            "/api/v1/billing/customer-portal",
            "/api/v1/billing/webhook",
        ):
            assert path in paths, path
        assert "402" in paths["/api/v1/analysis"]["post"]["responses"]
        assert "402" in paths["/api/v1/billing/subscription"]["post"]["responses"]


class TestPendingCancellation:
    async def test_takes_effect_at_the_period_end(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, user_id = await new_account(client, app)
        await client.post(f"{API}/subscription", json={"tier": "growth"}, headers=account.headers)
        r = await client.post(f"{API}/subscription/cancel", headers=account.headers)
        assert (r.json()["tier"], r.json()["cancel_at_period_end"]) == ("growth", True)
        start = utcnow().replace(microsecond=0) - timedelta(days=31)
        await update_subscription(
            app, user_id, current_period_start=start, current_period_end=start + timedelta(days=30)
        )
        sub = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        assert (sub["tier"], sub["cancel_at_period_end"], sub["minutes_included"]) == ("free", False, 500)
        assert sub["canceled_at"] == int((start + timedelta(days=30)).timestamp())
        async with state_of_app(app).sessionmaker() as session:
            invoices = (await session.exec(select(Invoice).where(Invoice.user_id == user_id))).all()
        assert [i.amount_due for i in invoices] == [19900]  # the growth period only; free costs nothing
