"""Metering on the embedded default (a SQLite file, no Redis, the local ledger): SQLite serialises
writers, and the subscription upsert that starts the check takes the write lock, so concurrent
submissions still never pass the free plan's limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from billing_support import WAV_MINUTES, new_account, seed_usage, submit
from conftest import running, sqlite_settings

from callcov.main import create_app

pytestmark = [pytest.mark.asyncio, pytest.mark.sqlite]


async def test_concurrent_submissions_on_sqlite_stay_within_the_limit(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, ratelimit={"enabled": False})
    app = create_app(settings)
    async with running(app) as client:
        account, user_id = await new_account(client, app)
        await seed_usage(app, user_id, 500 - 5 * WAV_MINUTES)
        responses = await asyncio.gather(*(submit(client, account.headers) for _ in range(20)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] * 5 + [402] * 15, statuses
        sub = (await client.get("/api/v1/billing/subscription", headers=account.headers)).json()
        assert sub["minutes_used"] == pytest.approx(500, abs=1e-4) and sub["minutes_remaining"] == 0
        r = await client.post(
            "/api/v1/billing/subscription", json={"tier": "growth"}, headers=account.headers
        )
        assert r.status_code == 201 and r.json()["tier"] == "growth"
        history = (await client.get("/api/v1/billing/history", headers=account.headers)).json()
        kinds = [item["object"] for item in history["items"]]
        assert history["total"] == 7 and kinds[0] == "invoice" and kinds.count("usage_record") == 6


async def test_refund_and_plan_change_on_sqlite(tmp_path: Path) -> None:
    """The refund (an UPDATE … RETURNING in the failing transaction) and the settlement of a plan
    change work on SQLite too."""
    from test_billing_integrity import fail_analysis

    settings = sqlite_settings(tmp_path, ratelimit={"enabled": False})
    app = create_app(settings)
    async with running(app) as client:
        account, user_id = await new_account(client, app)
        await client.post("/api/v1/billing/subscription", json={"tier": "starter"}, headers=account.headers)
        await seed_usage(app, user_id, 1100.0)
        analysis_id = (await submit(client, account.headers)).json()["id"]
        await fail_analysis(app, analysis_id)
        r = await client.post(
            "/api/v1/billing/subscription/update", json={"tier": "growth"}, headers=account.headers
        )
        assert r.status_code == 200, r.text
        assert r.json()["minutes_used"] == pytest.approx(1100, abs=1e-4)
        assert r.json()["overage_minutes"] == pytest.approx(100, abs=1e-4)
        history = (await client.get("/api/v1/billing/history", headers=account.headers)).json()
        amounts = [item["amount_due"] for item in history["items"] if item["object"] == "invoice"]
        assert 500 in amounts  # 100 overage minutes of starter, billed at the change
