"""Subscription changes on the local ledger (no Stripe account): subscribe, upgrade and downgrade with
proration, cancel at period end or now, reactivate, history of invoices, and who may do what."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from billing_support import new_account, seed_usage, submit
from conftest import PG_ADMIN_URL, create_key
from fastapi import FastAPI

from callcov.billing import changes

pytestmark = pytest.mark.asyncio
API = "/api/v1/billing"


async def invoices(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, object]]:
    history = (await client.get(f"{API}/history", params={"limit": 100}, headers=headers)).json()
    return [item for item in history["items"] if item["object"] == "invoice"]


class TestSubscribe:
    async def test_paid_plan_starts_a_period_and_invoices_its_price(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, _ = await new_account(client, app)
        r = await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["tier"], body["status"], body["provider"]) == ("starter", "active", "local")
        assert body["minutes_included"] == 1000 and body["cancel_at_period_end"] is False
        assert 28 * 86400 <= body["current_period_end"] - body["current_period_start"] <= 31 * 86400
        [invoice] = await invoices(client, account.headers)
        assert (invoice["amount_due"], invoice["status"], invoice["tier"]) == (4900, "open", "starter")

    async def test_second_paid_subscription_is_a_conflict(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, _ = await new_account(client, app)
        await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        r = await client.post(f"{API}/subscription", json={"tier": "growth"}, headers=account.headers)
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"

    async def test_unknown_tier_is_a_validation_error(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        r = await client.post(f"{API}/subscription", json={"tier": "platinum"}, headers=account.headers)
        assert r.status_code == 422

    async def test_changes_need_a_user_token(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        key = await create_key(client, account, "live")
        for path in ("/subscription", "/subscription/update", "/subscription/cancel"):
            r = await client.post(f"{API}{path}", json={"tier": "starter"}, headers={"X-API-Key": key})
            assert r.status_code == 403, path
        assert (await client.get(f"{API}/customer-portal", headers={"X-API-Key": key})).status_code == 403
        assert (await client.get(f"{API}/subscription", headers={"X-API-Key": key})).status_code == 200


class TestUpdate:
    async def test_upgrade_is_prorated_and_keeps_the_period(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, _ = await new_account(client, app)
        before = (
            await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        ).json()
        r = await client.post(f"{API}/subscription/update", json={"tier": "growth"}, headers=account.headers)
        assert r.status_code == 200, r.text
        after = r.json()
        assert after["tier"] == "growth" and after["minutes_included"] == 5000
        assert after["current_period_end"] == before["current_period_end"]
        proration = [i for i in await invoices(client, account.headers) if i["amount_due"] != 4900]
        assert len(proration) == 1
        assert 14900 <= proration[0]["amount_due"] <= 15000  # (199 - 49) $ for almost the whole period

    async def test_downgrade_is_credited(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        await client.post(f"{API}/subscription", json={"tier": "growth"}, headers=account.headers)
        r = await client.post(f"{API}/subscription/update", json={"tier": "starter"}, headers=account.headers)
        assert r.json()["tier"] == "starter"
        assert any(-15000 <= i["amount_due"] <= -14900 for i in await invoices(client, account.headers))

    async def test_from_free_subscribes_and_to_free_cancels_at_period_end(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, _ = await new_account(client, app)
        r = await client.post(f"{API}/subscription/update", json={"tier": "starter"}, headers=account.headers)
        assert r.json()["tier"] == "starter"
        r = await client.post(f"{API}/subscription/update", json={"tier": "free"}, headers=account.headers)
        assert (r.json()["tier"], r.json()["cancel_at_period_end"]) == ("starter", True)

    async def test_same_tier_is_refused(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        r = await client.post(f"{API}/subscription/update", json={"tier": "free"}, headers=account.headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_tier"


class TestCancel:
    async def test_at_period_end_then_reactivate(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        r = await client.post(f"{API}/subscription/cancel", headers=account.headers)
        assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True
        assert r.json()["tier"] == "starter"
        r = await client.post(f"{API}/subscription/reactivate", headers=account.headers)
        assert r.status_code == 200 and r.json()["cancel_at_period_end"] is False
        r = await client.post(f"{API}/subscription/reactivate", headers=account.headers)
        assert r.status_code == 409

    async def test_now_returns_to_free_and_its_limit(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, user_id = await new_account(client, app)
        await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        await seed_usage(app, user_id, 600.0)
        assert (await submit(client, account.headers)).status_code == 201
        r = await client.post(
            f"{API}/subscription/cancel", json={"at_period_end": False}, headers=account.headers
        )
        assert r.status_code == 200
        assert (r.json()["tier"], r.json()["canceled_at"] is not None) == ("free", True)
        assert (await submit(client, account.headers)).status_code == 402

    async def test_free_has_nothing_to_cancel(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        assert (await client.post(f"{API}/subscription/cancel", headers=account.headers)).status_code == 409


class TestPortalAndHistory:
    async def test_portal_needs_stripe(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        r = await client.get(f"{API}/customer-portal", headers=account.headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "billing_portal_unavailable"

    async def test_history_is_paginated_newest_first(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, _ = await new_account(client, app)
        await client.post(f"{API}/subscription", json={"tier": "starter"}, headers=account.headers)
        for _ in range(3):
            assert (await submit(client, account.headers)).status_code == 201
        page = (await client.get(f"{API}/history", params={"limit": 2}, headers=account.headers)).json()
        assert (page["object"], page["total"], page["has_more"], len(page["items"])) == ("list", 4, True, 2)
        rest = (
            await client.get(f"{API}/history", params={"skip": 2, "limit": 2}, headers=account.headers)
        ).json()
        items = page["items"] + rest["items"]
        assert [i["created"] for i in items] == sorted((i["created"] for i in items), reverse=True)
        assert {i["object"] for i in items} == {"usage_record", "invoice"}
        assert len({i["id"] for i in items}) == 4


class TestNoTransactionDuringProviderCalls:
    async def test_provider_is_called_with_no_transaction_open(
        self, client: httpx.AsyncClient, app: FastAPI, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While the provider (Stripe) is called, no connection of the database is idle in a
        transaction, so no row lock is held across the network call."""
        database = pg_url.rsplit("/", 1)[1]

        def open_transactions() -> int:
            with psycopg.connect(PG_ADMIN_URL) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state LIKE 'idle in transaction%%'",
                    (database,),
                ).fetchone()
            return int(row[0]) if row else -1

        seen: list[int] = []
        real = changes.open_provider

        @asynccontextmanager
        async def spying(settings: Any) -> AsyncIterator[Any]:
            async with real(settings) as provider:
                seen.append(await asyncio.to_thread(open_transactions))
                yield provider

        monkeypatch.setattr(changes, "open_provider", spying)
        account, _ = await new_account(client, app)
        for path, body in (
            ("/subscription", {"tier": "starter"}),
            ("/subscription/update", {"tier": "growth"}),
            ("/subscription/cancel", {}),
            ("/subscription/reactivate", {}),
        ):
            assert (await client.post(f"{API}{path}", json=body, headers=account.headers)).status_code < 300
        assert seen == [0, 0, 0, 0]
