from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from conftest import PASSWORD, SignUp, last_email_token, unique_email
from fastapi import FastAPI

pytestmark = pytest.mark.asyncio


class TestRegister:
    async def test_creates_unverified_user_and_sends_link(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        email = unique_email()
        r = await client.post(
            "/api/v1/auth/register",
            json={
                "email": email,
                "password": PASSWORD,
                "phone_number": "+1" + str(random.randrange(10**9, 10**10)),
            },
        )
        assert r.status_code == 201
        assert r.json() == {
            "message": "User registered successfully. Please check your email for the verification link.",
            "success": True,
        }
        assert await last_email_token(app, email, "verify_email")
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 403
        assert login.json()["error"]["code"] == "email_not_verified"
        assert "verify your email" in login.json()["detail"]

    async def test_duplicate_email_is_400(self, client: httpx.AsyncClient) -> None:
        email = unique_email()
        body = {"email": email, "password": PASSWORD}
        assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
        r = await client.post("/api/v1/auth/register", json={**body, "email": email.upper()})
        assert r.status_code == 400
        assert r.json()["detail"] == "Email already registered"

    @pytest.mark.parametrize(
        "password", ["short1!", "alllowercase1!", "ALLUPPER1!", "NoDigits!!", "NoSpecial11"]
    )
    async def test_password_rules(self, client: httpx.AsyncClient, password: str) -> None:
        r = await client.post("/api/v1/auth/register", json={"email": unique_email(), "password": password})
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "validation_error"
        assert isinstance(r.json()["detail"], list)

    @pytest.mark.parametrize("phone", ["12345", "+0123456789", "+1234567890123456", "phone"])
    async def test_phone_must_be_e164(self, client: httpx.AsyncClient, phone: str) -> None:
        body = {"email": unique_email(), "password": PASSWORD, "phone_number": phone}
        assert (await client.post("/api/v1/auth/register", json=body)).status_code == 422

    async def test_phone_without_plus_is_normalised(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        email = unique_email()
        body = {
            "email": email,
            "password": PASSWORD,
            "phone_number": "44" + str(random.randrange(10**9, 10**10)),
        }
        assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201


class TestVerifyEmail:
    async def test_code_logs_in_once(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        email = unique_email()
        await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        code = await last_email_token(app, email, "verify_email")
        r = await client.post("/api/v1/auth/verify-email", json={"code": code})
        assert r.status_code == 200
        assert r.json()["token_type"] == "bearer" and r.json()["expires_in"] == 1800
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["is_verified"] is True
        again = await client.post("/api/v1/auth/verify-email", json={"code": code})
        assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_token"

    async def test_resend_invalidates_earlier_codes_and_is_limited(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        email = unique_email()
        await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        first = await last_email_token(app, email, "verify_email")
        statuses = []
        for _ in range(3):
            statuses.append(
                (await client.post("/api/v1/auth/resend-verification", json={"email": email})).status_code
            )
        # The registration email counts: 3 per hour in all.
        assert statuses == [200, 200, 429]
        latest = await last_email_token(app, email, "verify_email")
        assert (await client.post("/api/v1/auth/verify-email", json={"code": first})).status_code == 400
        assert (await client.post("/api/v1/auth/verify-email", json={"code": latest})).status_code == 200
        r = await client.post("/api/v1/auth/resend-verification", json={"email": email})
        assert r.status_code in (400, 429)

    async def test_resend_errors(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        r = await client.post("/api/v1/auth/resend-verification", json={"email": account.email})
        assert r.status_code == 400 and r.json()["detail"] == "Email already verified"
        r = await client.post("/api/v1/auth/resend-verification", json={"email": unique_email()})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    async def test_expired_code_refused(self, app_factory, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
        async with app_factory(auth={"email_token_ttl_s": 0}) as short:
            email = unique_email()
            await short.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
            code = await _outbox_token(short, email)
            assert (await short.post("/api/v1/auth/verify-email", json={"code": code})).status_code == 400


async def _outbox_token(client: httpx.AsyncClient, email: str) -> str:
    transport = client._transport  # the ASGI app behind this client
    return await last_email_token(transport.app, email, "verify_email")  # type: ignore[attr-defined]


class TestLogin:
    async def test_same_message_for_unknown_email_and_bad_password(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        bad_password = await client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": "Wrong-pass1"}
        )
        unknown = await client.post(
            "/api/v1/auth/login", json={"email": unique_email(), "password": "Wrong-pass1"}
        )
        assert bad_password.status_code == unknown.status_code == 401
        assert bad_password.json()["detail"] == unknown.json()["detail"] == "Incorrect email or password"

    async def test_unknown_email_costs_a_hash(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        """Against enumeration by timing: an unknown email takes as long as a wrong password (argon2 runs
        for both). A loose bound: the unknown-email path is not an order of magnitude faster."""
        account = await signed_up()
        loop = asyncio.get_running_loop()

        async def timed(email: str) -> float:
            start = loop.time()
            await client.post("/api/v1/auth/login", json={"email": email, "password": "Wrong-pass1"})
            return loop.time() - start

        known = min([await timed(account.email) for _ in range(3)])
        unknown = min([await timed(unique_email()) for _ in range(3)])
        assert unknown > known / 5

    async def test_tokens_work(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        r = await client.post(
            "/api/v1/auth/login", json={"email": account.email.upper(), "password": PASSWORD}
        )
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200 and me.json()["email"] == account.email
