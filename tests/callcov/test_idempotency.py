"""Idempotency-Key semantics (CONTRACT.md §1) on real POSTs that create objects (API keys)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from conftest import Account, SignUp, create_key
from fastapi import FastAPI
from sqlmodel import func, select

from callcov.models import ApiKey, User
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio


async def count_keys(app: FastAPI, account: Account) -> int:
    async with state_of_app(app).sessionmaker() as session:
        user = (await session.exec(select(User).where(User.email == account.email))).one()
        return int(
            (
                await session.exec(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user.id))
            ).one()
        )


def post_key(client: httpx.AsyncClient, account: Account, key: str, body: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/api-keys", json=body, headers={**account.headers, "Idempotency-Key": key})


class TestReplay:
    async def test_same_key_same_body_replays(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = str(uuid.uuid4())
        first = await post_key(client, account, key, {"description": "a", "mode": "live"})
        # Same parameters in another key order: still the same request.
        again = await client.post(
            "/api/v1/api-keys",
            content=b'{"mode": "live",   "description": "a"}',
            headers={**account.headers, "Idempotency-Key": key, "Content-Type": "application/json"},
        )
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert await count_keys(app, account) == 1

    async def test_different_body_is_422(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        key = str(uuid.uuid4())
        await post_key(client, account, key, {"description": "a"})
        r = await post_key(client, account, key, {"description": "b"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"

    async def test_keys_are_scoped_per_account(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        first, second = await signed_up(), await signed_up()
        key = str(uuid.uuid4())
        a = await post_key(client, first, key, {"description": "x"})
        b = await post_key(client, second, key, {"description": "x"})
        assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]

    async def test_keys_are_scoped_per_mode(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        live, test = await create_key(client, account, "live"), await create_key(client, account, "test")
        key = str(uuid.uuid4())
        # A POST both keys may make (the analysis does not exist: 404, stored like any result).
        path, body = f"/api/v1/analysis/{uuid.uuid4()}/webhook", {"webhook_url": "https://example.com/h"}
        as_live = await client.post(path, json=body, headers={"X-API-Key": live, "Idempotency-Key": key})
        as_test = await client.post(path, json=body, headers={"X-API-Key": test, "Idempotency-Key": key})
        replay = await client.post(path, json=body, headers={"X-API-Key": live, "Idempotency-Key": key})
        assert as_live.status_code == as_test.status_code == 404
        assert "Idempotent-Replayed" not in as_test.headers  # the test key does not see the live response
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == as_live.content

    async def test_failed_validation_is_not_stored(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = str(uuid.uuid4())
        bad = await post_key(client, account, key, {"mode": "staging"})
        assert bad.status_code == 422
        good = await post_key(client, account, key, {"mode": "test"})
        assert good.status_code == 201

    async def test_key_too_long(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        r = await post_key(client, account, "k" * 256, {})
        assert r.status_code == 400

    async def test_anonymous_requests_are_not_replayed(self, client: httpx.AsyncClient) -> None:
        body = {"email": "nobody@example.com"}
        headers = {"Idempotency-Key": "same"}
        a = await client.post("/api/v1/auth/password-reset", json=body, headers=headers)
        b = await client.post("/api/v1/auth/password-reset", json=body, headers=headers)
        assert "Idempotent-Replayed" not in b.headers and a.status_code == b.status_code == 200


class TestConcurrency:
    async def test_fifty_concurrent_requests_create_one_object(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = str(uuid.uuid4())
        responses = await asyncio.gather(
            *(post_key(client, account, key, {"description": "c"}) for _ in range(50))
        )
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {201, 409}
        created = [r for r in responses if r.status_code == 201]
        assert len({r.json()["id"] for r in created}) == 1
        assert all(
            r.json()["error"]["code"] == "idempotency_key_in_use" for r in responses if r.status_code == 409
        )
        assert await count_keys(app, account) == 1
        after = await post_key(client, account, key, {"description": "c"})
        assert after.status_code == 201 and after.headers["Idempotent-Replayed"] == "true"

    async def test_stale_lock_is_taken_over(
        self, app_factory, signed_up: SignUp, client: httpx.AsyncClient
    ) -> None:  # type: ignore[no-untyped-def]
        """A request that died holding a key (crashed process) does not block the key forever."""
        from datetime import timedelta

        from sqlalchemy import update

        from callcov.kit.time import utcnow
        from callcov.models import IdempotencyKey

        account = await signed_up()
        key = str(uuid.uuid4())
        async with app_factory(idempotency={"lock_timeout_s": 5}) as other:
            first = await post_key(other, account, key, {"description": "s"})
            assert first.status_code == 201
            app = other._transport.app  # type: ignore[attr-defined]
            async with state_of_app(app).sessionmaker() as session:
                await session.exec(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.key == key)  # type: ignore[arg-type]
                    .values(status="in_flight", locked_at=utcnow() - timedelta(seconds=60))
                )
                await session.commit()
            retried = await post_key(other, account, key, {"description": "s"})
            assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
