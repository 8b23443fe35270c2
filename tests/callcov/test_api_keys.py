from __future__ import annotations

import hashlib

import httpx
import pytest
from conftest import SignUp, create_key
from fastapi import FastAPI
from sqlmodel import select

from callcov.kit.tokens import api_key_checksum_ok
from callcov.models import ApiKey
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio


class TestCreate:
    async def test_shown_once_and_stored_hashed(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        r = await client.post("/api/v1/api-keys/", json={"description": "ci"}, headers=account.headers)
        assert r.status_code == 201
        body = r.json()
        key = body["api_key"]
        assert key.startswith("sk_live_") and len(key) == len("sk_live_") + 48 and api_key_checksum_ok(key)
        assert body["key_prefix"] == key[:14] and body["livemode"] is True and body["object"] == "api_key"
        assert body["description"] == "ci" and isinstance(body["created"], int)
        async with state_of_app(app).sessionmaker() as session:
            row = (await session.exec(select(ApiKey).where(ApiKey.id == body["id"]))).one()
        assert key not in row.key_hash and row.key_hash != hashlib.sha256(key.encode()).hexdigest()
        listed = (await client.get("/api/v1/api-keys", headers=account.headers)).json()
        assert all("api_key" not in item for item in listed["api_keys"])

    async def test_test_mode_and_name_alias(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        r = await client.post(
            "/api/v1/api-keys", json={"name": "staging", "mode": "test"}, headers=account.headers
        )
        assert r.json()["api_key"].startswith("sk_test_") and r.json()["livemode"] is False
        assert r.json()["description"] == "staging"

    async def test_at_most_ten_active(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        ids = []
        for _ in range(10):
            ids.append((await client.post("/api/v1/api-keys", json={}, headers=account.headers)).json()["id"])
        over = await client.post("/api/v1/api-keys", json={}, headers=account.headers)
        assert over.status_code == 400 and "10" in over.json()["detail"]
        await client.delete(f"/api/v1/api-keys/{ids[0]}", headers=account.headers)
        assert (await client.post("/api/v1/api-keys", json={}, headers=account.headers)).status_code == 201

    async def test_api_key_cannot_create_keys(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        r = await client.post("/api/v1/api-keys", json={}, headers={"X-API-Key": key})
        assert r.status_code == 403
        assert (
            await client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {key}"})
        ).status_code == 403


class TestUseAndRevoke:
    async def test_both_headers_and_last_used(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        listed = (await client.get("/api/v1/api-keys", headers=account.headers)).json()
        assert listed["api_keys"][0]["last_used_at"] is None
        assert (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).status_code == 200
        assert (
            await client.get("/api/v1/analysis", headers={"Authorization": f"Bearer {key}"})
        ).status_code == 200
        listed = (await client.get("/api/v1/api-keys", headers=account.headers)).json()
        assert isinstance(listed["api_keys"][0]["last_used_at"], int)

    async def test_revocation_is_immediate(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        key_id = (await client.get("/api/v1/api-keys", headers=account.headers)).json()["api_keys"][0]["id"]
        r = await client.delete(f"/api/v1/api-keys/{key_id}", headers=account.headers)
        assert r.status_code == 200 and r.json() == {
            "message": "API key expired successfully",
            "success": True,
        }
        assert (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).status_code == 401
        active = (await client.get("/api/v1/api-keys", headers=account.headers)).json()
        assert active["total"] == 0
        everything = (
            await client.get("/api/v1/api-keys?include_expired=true", headers=account.headers)
        ).json()
        assert everything["total"] == 1 and everything["api_keys"][0]["is_active"] is False

    async def test_other_accounts_key_is_404(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        owner, stranger = await signed_up(), await signed_up()
        await create_key(client, owner)
        key_id = (await client.get("/api/v1/api-keys", headers=owner.headers)).json()["api_keys"][0]["id"]
        r = await client.delete(f"/api/v1/api-keys/{key_id}", headers=stranger.headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    async def test_malformed_and_unknown_keys(self, client: httpx.AsyncClient) -> None:
        for key in ("sk_live_nope", "sk_test_" + "a" * 48, "not-a-key"):
            r = await client.get("/api/v1/analysis", headers={"X-API-Key": key})
            assert r.status_code == 401

    async def test_pagination(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        for _ in range(3):
            await create_key(client, account)
        page = (await client.get("/api/v1/api-keys?limit=2", headers=account.headers)).json()
        assert len(page["api_keys"]) == 2 and page["total"] == 3 and page["has_more"] is True
        rest = (await client.get("/api/v1/api-keys?limit=2&offset=2", headers=account.headers)).json()
        assert len(rest["api_keys"]) == 1 and rest["skip"] == 2 and rest["has_more"] is False
