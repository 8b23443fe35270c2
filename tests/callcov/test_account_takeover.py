"""A stolen access token must not take over the account: sensitive profile changes need the current
password, and password changes, resets and email changes end the sessions (and, for a reset, the API
keys) a thief may hold (issue 12, finding 3)."""

from __future__ import annotations

import random

import httpx
import pytest
from conftest import PASSWORD, Account, SignUp, create_key, last_email_token, unique_email
from fastapi import FastAPI

pytestmark = pytest.mark.asyncio

NEW_PASSWORD = "An0ther-pass!"


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def session_works(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    r = await client.get("/api/v1/users/me", headers=headers)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


async def refresh_works(client: httpx.AsyncClient, account: Account) -> bool:
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    return r.status_code == 200


async def key_works(client: httpx.AsyncClient, key: str) -> bool:
    r = await client.get("/api/v1/analysis", headers={"X-API-Key": key})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


class TestCurrentPassword:
    @pytest.mark.parametrize("change", [{"password": NEW_PASSWORD}, {"email": "EMAIL"}])
    async def test_needed_for_password_and_email(
        self, client: httpx.AsyncClient, signed_up: SignUp, change: dict[str, str]
    ) -> None:
        account = await signed_up()
        if "email" in change:
            change = {"email": unique_email()}
        missing = await client.put("/api/v1/users/me", json=change, headers=account.headers)
        assert missing.status_code == 400
        assert missing.json()["error"]["code"] == "current_password_required"
        wrong = await client.put(
            "/api/v1/users/me", json={**change, "current_password": "Wr0ng-pass!"}, headers=account.headers
        )
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_password"
        me = (await client.get("/api/v1/users/me", headers=account.headers)).json()
        assert me["email"] == account.email  # nothing changed
        assert (await login(client, account.email, PASSWORD)).status_code == 200
        ok = await client.put(
            "/api/v1/users/me", json={**change, "current_password": PASSWORD}, headers=account.headers
        )
        assert ok.status_code == 200, ok.text

    async def test_not_needed_for_the_phone_number(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        phone = "+44" + str(random.randrange(10**9, 10**10))
        r = await client.put("/api/v1/users/me", json={"phone_number": phone}, headers=account.headers)
        assert r.status_code == 200 and r.json()["phone_number"] == phone
        assert await session_works(client, account.headers)  # no session ended


class TestPasswordChange:
    async def test_ends_every_session_and_keeps_api_keys(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        r = await client.put(
            "/api/v1/users/me",
            json={"password": NEW_PASSWORD, "current_password": PASSWORD},
            headers=account.headers,
        )
        assert r.status_code == 200
        assert not await session_works(client, account.headers)
        assert not await refresh_works(client, account)
        assert await key_works(client, key)
        # A login in the same second as the change works (revocation is by token version, not time).
        fresh = await login(client, account.email, NEW_PASSWORD)
        assert fresh.status_code == 200
        assert await session_works(client, {"Authorization": f"Bearer {fresh.json()['access_token']}"})


class TestEmailChange:
    async def test_ends_every_session_and_keeps_api_keys(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        new_email = unique_email()
        r = await client.put(
            "/api/v1/users/me",
            json={"email": new_email, "current_password": PASSWORD},
            headers=account.headers,
        )
        assert r.status_code == 200
        assert not await session_works(client, account.headers)
        assert not await refresh_works(client, account)
        assert await key_works(client, key)
        code = await last_email_token(app, new_email, "verify_email")
        tokens = await client.post("/api/v1/auth/verify-email", json={"code": code})
        assert tokens.status_code == 200
        assert await session_works(client, {"Authorization": f"Bearer {tokens.json()['access_token']}"})


class TestPasswordReset:
    async def test_ends_sessions_and_revokes_api_keys(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        live, test = await create_key(client, account, "live"), await create_key(client, account, "test")
        await client.post("/api/v1/auth/password-reset", json={"email": account.email})
        token = await last_email_token(app, account.email, "password_reset")
        r = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert r.status_code == 200
        assert not await session_works(client, account.headers)
        assert not await refresh_works(client, account)
        assert not await key_works(client, live) and not await key_works(client, test)
        fresh = await login(client, account.email, NEW_PASSWORD)
        headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
        keys = (await client.get("/api/v1/api-keys?include_expired=true", headers=headers)).json()
        assert keys["total"] == 2 and not any(k["is_active"] for k in keys["api_keys"])
