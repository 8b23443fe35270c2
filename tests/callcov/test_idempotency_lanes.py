"""Idempotency replays are bound to the exact credential and to the route's auth requirement, the
fingerprint covers the query string, only a valid caller is replayed to, and stored responses are
encrypted at rest (issue 12, finding 2)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from conftest import PASSWORD, Account, SignUp, create_key
from fastapi import FastAPI
from sqlmodel import col, select

from callcov.models import IdempotencyKey
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio

WEBHOOK_BODY = {"webhook_url": "https://example.com/hook"}


def missing_analysis_webhook() -> str:
    """A POST any credential may make; its answer (404, stored like any 4xx but 400/409/422/429) is
    reached before any network access."""
    return f"/api/v1/analysis/{uuid.uuid4()}/webhook"


async def second_login(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def stored_rows(app: FastAPI, key: str) -> list[IdempotencyKey]:
    async with state_of_app(app).sessionmaker() as session:
        return list((await session.exec(select(IdempotencyKey).where(col(IdempotencyKey.key) == key))).all())


class TestRouteAuthRequirement:
    async def test_api_key_cannot_replay_a_new_api_key(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        live_key = await create_key(client, account, "live")
        idem = str(uuid.uuid4())
        first = await client.post(
            "/api/v1/api-keys", json={"mode": "live"}, headers={**account.headers, "Idempotency-Key": idem}
        )
        assert first.status_code == 201
        stolen = await client.post(
            "/api/v1/api-keys",
            json={"mode": "live"},
            headers={"X-API-Key": live_key, "Idempotency-Key": idem},
        )
        assert stolen.status_code == 403 and stolen.json()["error"]["code"] == "forbidden"
        assert "Idempotent-Replayed" not in stolen.headers
        assert first.json()["api_key"] not in stolen.text

    async def test_api_key_cannot_replay_a_rotated_webhook_secret(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        live_key = await create_key(client, account, "live")
        idem = str(uuid.uuid4())
        first = await client.post(
            "/api/v1/webhooks/secret/rotate", headers={**account.headers, "Idempotency-Key": idem}
        )
        assert first.status_code == 200
        stolen = await client.post(
            "/api/v1/webhooks/secret/rotate",
            headers={"Authorization": f"Bearer {live_key}", "Idempotency-Key": idem},
        )
        assert stolen.status_code == 403 and "Idempotent-Replayed" not in stolen.headers
        assert first.json()["secret"] not in stolen.text


class TestCredentialBinding:
    async def test_another_api_key_of_the_account_is_refused(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        one, other = await create_key(client, account), await create_key(client, account)
        path, idem = missing_analysis_webhook(), str(uuid.uuid4())
        first = await client.post(
            path, json=WEBHOOK_BODY, headers={"X-API-Key": one, "Idempotency-Key": idem}
        )
        assert first.status_code == 404
        again = await client.post(
            path, json=WEBHOOK_BODY, headers={"X-API-Key": one, "Idempotency-Key": idem}
        )
        assert again.headers["Idempotent-Replayed"] == "true"
        refused = await client.post(
            path, json=WEBHOOK_BODY, headers={"X-API-Key": other, "Idempotency-Key": idem}
        )
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "idempotency_key_reused"
        assert "Idempotent-Replayed" not in refused.headers

    async def test_a_jwt_does_not_replay_an_api_keys_response(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = await create_key(client, account)
        path, idem = missing_analysis_webhook(), str(uuid.uuid4())
        await client.post(path, json=WEBHOOK_BODY, headers={"X-API-Key": key, "Idempotency-Key": idem})
        as_jwt = await client.post(
            path, json=WEBHOOK_BODY, headers={**account.headers, "Idempotency-Key": idem}
        )
        assert as_jwt.status_code == 422 and "Idempotent-Replayed" not in as_jwt.headers

    async def test_every_session_of_the_user_shares_the_jwt_lane(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        other_session = await second_login(client, account)
        idem = str(uuid.uuid4())
        first = await client.post(
            "/api/v1/api-keys", json={}, headers={**account.headers, "Idempotency-Key": idem}
        )
        again = await client.post(
            "/api/v1/api-keys", json={}, headers={**other_session, "Idempotency-Key": idem}
        )
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.content == first.content


class TestFingerprint:
    async def test_query_string_is_part_of_the_request(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        idem = str(uuid.uuid4())
        headers = {**account.headers, "Idempotency-Key": idem}
        live = await client.post("/api/v1/webhooks/secret/rotate?mode=live", headers=headers)
        assert live.status_code == 200
        test = await client.post("/api/v1/webhooks/secret/rotate?mode=test", headers=headers)
        assert test.status_code == 422 and test.json()["error"]["code"] == "idempotency_key_reused"
        assert live.json()["secret"] not in test.text

    async def test_query_parameter_order_does_not_matter(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        headers = {**account.headers, "Idempotency-Key": str(uuid.uuid4())}
        await client.post("/api/v1/webhooks/secret/rotate?mode=test&x=1", headers=headers)
        again = await client.post("/api/v1/webhooks/secret/rotate?x=1&mode=test", headers=headers)
        assert again.headers["Idempotent-Replayed"] == "true"


class TestValidCaller:
    async def test_deactivated_users_token_gets_no_replay(
        self, client: httpx.AsyncClient, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        idem = str(uuid.uuid4())
        headers = {**account.headers, "Idempotency-Key": idem}
        first = await client.post("/api/v1/api-keys", json={}, headers=headers)
        assert first.status_code == 201
        assert (await client.delete("/api/v1/users/me", headers=account.headers)).status_code == 200
        after = await client.post("/api/v1/api-keys", json={}, headers=headers)
        assert after.status_code == 401 and "Idempotent-Replayed" not in after.headers
        assert first.json()["api_key"] not in after.text


class TestSecretsAtRest:
    async def test_stored_responses_are_encrypted(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key_idem, rotate_idem = str(uuid.uuid4()), str(uuid.uuid4())
        created = await client.post(
            "/api/v1/api-keys", json={}, headers={**account.headers, "Idempotency-Key": key_idem}
        )
        rotated = await client.post(
            "/api/v1/webhooks/secret/rotate", headers={**account.headers, "Idempotency-Key": rotate_idem}
        )
        for idem, secret in ((key_idem, created.json()["api_key"]), (rotate_idem, rotated.json()["secret"])):
            (row,) = await stored_rows(app, idem)
            assert row.status == "done" and row.response_body
            assert secret.encode() not in row.response_body
            assert b'"object"' not in row.response_body  # not even the JSON around it
        # The credential that made the request still gets the exact response back.
        replay = await client.post(
            "/api/v1/api-keys", json={}, headers={**account.headers, "Idempotency-Key": key_idem}
        )
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == created.content

    async def test_response_sealed_under_a_removed_key_is_409(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        from conftest import sign_up

        idem = str(uuid.uuid4())
        async with app_factory(webhooks={"encryption_keys": ["old-key-" + "x" * 32]}) as client:
            account = await sign_up(client, client._transport.app)  # type: ignore[attr-defined]
            headers = {**account.headers, "Idempotency-Key": idem}
            assert (await client.post("/api/v1/api-keys", json={}, headers=headers)).status_code == 201
        async with app_factory(webhooks={"encryption_keys": ["new-key-" + "y" * 32]}) as client:
            r = await client.post("/api/v1/api-keys", json={}, headers=headers)
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_response_unavailable"


class TestRefusalsAreNotStored:
    async def test_a_403_does_not_hold_the_key(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        account = await signed_up()
        api_key = await create_key(client, account)
        idem = str(uuid.uuid4())
        refused = await client.post(
            "/api/v1/api-keys", json={}, headers={"X-API-Key": api_key, "Idempotency-Key": idem}
        )
        assert refused.status_code == 403
        allowed = await client.post(
            "/api/v1/api-keys", json={}, headers={**account.headers, "Idempotency-Key": idem}
        )
        assert allowed.status_code == 201 and "Idempotent-Replayed" not in allowed.headers


class TestInFlight:
    async def test_another_credential_gets_422_while_the_first_runs(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        from callcov.idempotency import store

        account = await signed_up()
        state = state_of_app(app)
        owner = await client.get("/api/v1/users/me", headers=account.headers)
        user_id = uuid.UUID(owner.json()["id"])
        idem = str(uuid.uuid4())
        keys = tuple(state.settings.webhooks.encryption_keys)
        first = store.Scope(user_id, True, idem, credential="api_key:a", keys=keys)
        claim = await store.claim(state.sessionmaker, state.settings.idempotency, first, "f" * 64)
        assert isinstance(claim, store.Proceed)
        second = store.Scope(user_id, True, idem, credential="api_key:b", keys=keys)
        assert await store.claim(
            state.sessionmaker, state.settings.idempotency, second, "f" * 64
        ) == store.Mismatch(other_credential=True)
        assert isinstance(
            await store.claim(state.sessionmaker, state.settings.idempotency, first, "f" * 64), store.InFlight
        )


async def test_route_requirements_are_read_from_the_routes(app: FastAPI) -> None:
    """If FastAPI's routing changed shape and every route looked public, idempotency would be off."""
    from callcov.idempotency.routes import Requirement, requirement

    def of(path: str) -> Requirement:
        return requirement({"app": app, "method": "POST", "path": path})

    assert of("/api/v1/api-keys") is of("/api/v1/webhooks/secret/rotate") is Requirement.jwt
    assert of("/api/v1/billing/subscription/cancel") is Requirement.jwt
    assert of("/api/v1/analysis") is of(f"/api/v1/analysis/{uuid.uuid4()}/webhook") is Requirement.principal
    assert of("/api/v1/auth/login") is of("/api/v1/billing/webhook") is of("/nowhere") is Requirement.public
