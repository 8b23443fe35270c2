from __future__ import annotations

import random

import httpx
import pytest
from conftest import PASSWORD, SignUp, create_key, last_email_token, unique_email
from fastapi import FastAPI

pytestmark = pytest.mark.asyncio


class TestReadMe:
    async def test_user_object(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        body = (await client.get("/api/v1/users/me", headers=account.headers)).json()
        assert body["object"] == "user" and body["email"] == account.email
        assert isinstance(body["created"], int) and isinstance(body["updated"], int)
        assert body["is_active"] is True and body["is_verified"] is True
        assert "hashed_password" not in body

    async def test_api_key_gets_403(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            r = await client.get("/api/v1/users/me", headers=headers)
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "forbidden"

    async def test_no_credentials_401(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/api/v1/users/me")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


class TestUpdateMe:
    async def test_no_fields(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        r = await client.put("/api/v1/users/me", json={}, headers=account.headers)
        assert r.status_code == 400 and r.json()["detail"] == "No fields to update"

    async def test_phone_and_uniqueness(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        first, second = await signed_up(), await signed_up()
        phone = "+44" + str(random.randrange(10**9, 10**10))
        r = await client.put("/api/v1/users/me", json={"phone_number": phone}, headers=first.headers)
        assert r.status_code == 200 and r.json()["phone_number"] == phone
        taken = await client.put("/api/v1/users/me", json={"phone_number": phone}, headers=second.headers)
        assert taken.status_code == 400 and taken.json()["detail"] == "Phone number already in use"
        email = await client.put(
            "/api/v1/users/me",
            json={"email": first.email, "current_password": PASSWORD},
            headers=second.headers,
        )
        assert email.status_code == 400 and email.json()["detail"] == "Email already in use"

    async def test_email_change_needs_verification(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        new_email = unique_email()
        r = await client.put(
            "/api/v1/users/me",
            json={"email": new_email, "current_password": PASSWORD},
            headers=account.headers,
        )
        assert r.status_code == 200
        assert r.json()["email"] == new_email and r.json()["is_verified"] is False
        code = await last_email_token(app, new_email, "verify_email")
        assert (await client.post("/api/v1/auth/verify-email", json={"code": code})).status_code == 200

    async def test_password_change(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        weak = await client.put(
            "/api/v1/users/me",
            json={"password": "weak", "current_password": PASSWORD},
            headers=account.headers,
        )
        assert weak.status_code == 422
        r = await client.put(
            "/api/v1/users/me",
            json={"password": "An0ther-pass!", "current_password": PASSWORD},
            headers=account.headers,
        )
        assert r.status_code == 200
        login = await client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": "An0ther-pass!"}
        )
        assert login.status_code == 200
        refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
        assert refreshed.status_code == 401


class TestDeleteMe:
    async def test_deactivates_and_revokes_keys(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        r = await client.delete("/api/v1/users/me", headers=account.headers)
        assert r.status_code == 200 and r.json()["success"] is True
        login = await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        assert login.status_code == 403 and login.json()["error"]["code"] == "account_deactivated"
        assert (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).status_code == 401
        assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 401
        refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
        assert refreshed.status_code == 401
