from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from conftest import PASSWORD, TEST_SECRET, SignUp, last_email_token
from fastapi import FastAPI

pytestmark = pytest.mark.asyncio


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


class TestRefresh:
    async def test_rotation(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        first = await _refresh(client, account.refresh_token)
        assert first.status_code == 200
        pair = first.json()
        assert pair["refresh_token"] != account.refresh_token
        second = await _refresh(client, pair["refresh_token"])
        assert second.status_code == 200

    async def test_reuse_revokes_the_family(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        rotated = (await _refresh(client, account.refresh_token)).json()["refresh_token"]
        reuse = await _refresh(client, account.refresh_token)
        assert reuse.status_code == 401
        assert "revoked" in reuse.json()["detail"]
        # The legitimate newest token of that family is dead too.
        assert (await _refresh(client, rotated)).status_code == 401

    async def test_other_logins_survive_a_reuse(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        other = (
            await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        ).json()
        await _refresh(client, account.refresh_token)
        await _refresh(client, account.refresh_token)
        assert (await _refresh(client, other["refresh_token"])).status_code == 200

    async def test_access_token_is_not_a_refresh_token(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        assert (await _refresh(client, account.access_token)).status_code == 401
        r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {account.refresh_token}"})
        assert r.status_code == 401

    async def test_garbage(self, client: httpx.AsyncClient) -> None:
        assert (await _refresh(client, "not-a-jwt")).status_code == 401


class TestAccessToken:
    async def test_expired_token_refused(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        claims = jwt.decode(account.access_token, TEST_SECRET, algorithms=["HS256"])
        claims.update(iat=int(time.time()) - 3600, exp=int(time.time()) - 1)
        expired = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
        r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401
        assert r.json()["detail"] == "Token has expired"

    async def test_expiry_is_30_minutes(self, signed_up: SignUp) -> None:
        account = await signed_up()
        claims = jwt.decode(account.access_token, TEST_SECRET, algorithms=["HS256"])
        assert claims["exp"] - claims["iat"] == 1800

    async def test_forged_signature_refused(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        claims = jwt.decode(account.access_token, TEST_SECRET, algorithms=["HS256"])
        forged = jwt.encode(claims, "another-secret-0123456789abcdef0123456789", algorithm="HS256")
        r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401

    async def test_unknown_user_refused(self, client: httpx.AsyncClient) -> None:
        claims = {
            "sub": str(uuid.uuid4()),
            "typ": "access",
            "jti": "x",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        }
        token = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
        r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


class TestPasswordReset:
    async def test_always_200_with_same_body(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        known = await client.post("/api/v1/auth/password-reset", json={"email": account.email})
        unknown = await client.post("/api/v1/auth/password-reset", json={"email": "nobody@example.com"})
        assert known.status_code == unknown.status_code == 200
        assert known.json() == unknown.json()

    async def test_reset_is_single_use_and_revokes_sessions(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        await client.post("/api/v1/auth/password-reset", json={"email": account.email})
        token = await last_email_token(app, account.email, "password_reset")
        new_password = "N3w-passw0rd!"
        r = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
        )
        assert r.status_code == 200 and r.json()["success"] is True
        again = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "An0ther-pass!"}
        )
        assert again.status_code == 400
        assert (await _refresh(client, account.refresh_token)).status_code == 401
        old = await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        assert old.status_code == 401
        new = await client.post("/api/v1/auth/login", json={"email": account.email, "password": new_password})
        assert new.status_code == 200

    async def test_weak_new_password_refused(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": "x", "new_password": "weak"}
        )
        assert r.status_code == 422
