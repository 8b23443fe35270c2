"""Reading analyses: scoping by account and by mode, filters, pagination. Rows are inserted directly
(submission belongs to the pipeline)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import Account, SignUp, create_key
from fastapi import FastAPI
from sqlmodel import select

from callcov.models import Analysis, User
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio


async def insert(app: FastAPI, account: Account, *, livemode: bool, **fields: object) -> str:
    async with state_of_app(app).sessionmaker() as session:
        user = (await session.exec(select(User).where(User.email == account.email))).one()
        values = {"agent_id": "agent_1", "contact_id": "contact_1", **fields}
        row = Analysis(user_id=user.id, livemode=livemode, **values)  # type: ignore[arg-type]
        session.add(row)
        await session.commit()
        return str(row.id)


class TestModes:
    async def test_test_key_never_sees_live_objects(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        live_key, test_key = (
            await create_key(client, account, "live"),
            await create_key(client, account, "test"),
        )
        live_id = await insert(app, account, livemode=True)
        test_id = await insert(app, account, livemode=False)

        as_test = (await client.get("/api/v1/analysis", headers={"X-API-Key": test_key})).json()
        assert [item["id"] for item in as_test["items"]] == [test_id]
        assert as_test["items"][0]["livemode"] is False
        assert (
            await client.get(f"/api/v1/analysis/{live_id}", headers={"X-API-Key": test_key})
        ).status_code == 404

        as_live = (await client.get("/api/v1/analysis", headers={"X-API-Key": live_key})).json()
        assert [item["id"] for item in as_live["items"]] == [live_id]
        assert (
            await client.get(f"/api/v1/analysis/{test_id}", headers={"X-API-Key": live_key})
        ).status_code == 404
        # A JWT acts in live mode.
        as_jwt = (await client.get("/api/v1/analysis", headers=account.headers)).json()
        assert [item["id"] for item in as_jwt["items"]] == [live_id]

    async def test_other_account_gets_404_not_403(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        owner, stranger = await signed_up(), await signed_up()
        analysis_id = await insert(app, owner, livemode=True)
        r = await client.get(f"/api/v1/analysis/{analysis_id}", headers=stranger.headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (
            await client.get(f"/api/v1/analysis/{uuid.uuid4()}", headers=owner.headers)
        ).status_code == 404


class TestObject:
    async def test_shape(self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp) -> None:
        account = await signed_up()
        analysis_id = await insert(
            app,
            account,
            livemode=True,
            duration_ms=125500,
            audio_format="wav",
            client_metadata={"campaign": "summer"},
            webhook_url="https://example.com/hook",
        )
        body = (await client.get(f"/api/v1/analysis/{analysis_id}/", headers=account.headers)).json()
        assert body["object"] == "analysis" and body["id"] == body["analysis_id"] == analysis_id
        assert body["status"] == "processing" and isinstance(body["created"], int)
        assert body["call"]["duration_ms"] == 125500 and body["call"]["duration_seconds"] == 125.5
        assert body["audio"]["format"] == "wav" and body["transcript"] is None and body["results"] is None
        assert body["metadata"]["campaign"] == "summer"
        assert body["metadata"]["webhook_url"] == "https://example.com/hook"
        assert body["metadata"]["error_message"] is None


class TestList:
    async def test_filters_and_pages(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        old = datetime.now(UTC) - timedelta(days=2)
        await insert(app, account, livemode=True, status="completed", created_at=old)
        for i in range(4):
            await insert(app, account, livemode=True, agent_id=f"Agent_{i}", contact_id=f"cust-{i}")
        h = account.headers
        base = "/api/v1/analysis"
        assert (await client.get(f"{base}?status=completed", headers=h)).json()["total"] == 1
        assert (await client.get(f"{base}?status_filter=processing", headers=h)).json()["total"] == 4
        assert (await client.get(f"{base}?agent_id=Agent_2", headers=h)).json()["total"] == 1
        assert (await client.get(f"{base}?search=CUST-3", headers=h)).json()["total"] == 1
        since = int((datetime.now(UTC) - timedelta(days=1)).timestamp())
        assert (await client.get(f"{base}?created_gte={since}", headers=h)).json()["total"] == 4
        assert (await client.get(f"{base}?created_lte={since}", headers=h)).json()["total"] == 1
        page = (await client.get(f"{base}?limit=2&skip=1", headers=h)).json()
        assert page["object"] == "list" and page["total"] == 5 and page["skip"] == 1 and page["limit"] == 2
        assert len(page["items"]) == 2 and page["has_more"] is True
        created = [item["created"] for item in (await client.get(base, headers=h)).json()["items"]]
        assert created == sorted(created, reverse=True)
        assert (await client.get(f"{base}?limit=101", headers=h)).status_code == 422
        assert (await client.get(f"{base}?status=bogus", headers=h)).status_code == 422
