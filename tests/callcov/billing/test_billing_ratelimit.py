"""Per-plan rate limits (CONTRACT.md §1, ``CALLCOV_RATELIMIT__PLANS``): a credential is limited by its
account's plan when the plan has an override, by the defaults otherwise."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from billing_support import new_account
from conftest import create_key, running
from fastapi import FastAPI

from callcov.main import create_app

pytestmark = pytest.mark.asyncio


async def test_plan_override_applies_to_that_plans_accounts(
    client: httpx.AsyncClient, app: FastAPI, settings_factory: Any
) -> None:
    starter, _ = await new_account(client, app)
    r = await client.post("/api/v1/billing/subscription", json={"tier": "starter"}, headers=starter.headers)
    assert r.status_code == 201
    starter_key = await create_key(client, starter, "live")
    free, _ = await new_account(client, app)
    limited = create_app(settings_factory(ratelimit={"plans": {"starter": {"default": 3}}}))
    async with running(limited) as other:
        for headers, limit in (
            (starter.headers, 3),
            ({"X-API-Key": starter_key}, 3),
            (free.headers, 100_000),
        ):
            codes = []
            for _ in range(4):
                r = await other.get("/api/v1/billing/usage", headers=headers)
                assert r.headers["X-RateLimit-Limit"] == str(limit)
                codes.append(r.status_code)
            assert codes == ([200, 200, 200, 429] if limit == 3 else [200] * 4)


async def test_stripe_webhook_is_not_rate_limited(settings_factory: Any) -> None:
    limited = create_app(
        settings_factory(ratelimit={"default_per_window": 2}, billing={"stripe_webhook_secret": "whsec_test"})
    )
    async with running(limited) as other:
        codes = {
            (
                await other.post(
                    "/api/v1/billing/webhook/", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"}
                )
            ).status_code
            for _ in range(5)
        }
        assert 429 not in codes and codes == {400}
        codes = [
            (await other.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "x"})).status_code
            for _ in range(3)
        ]
        assert codes[-1] == 429  # other public endpoints still are
