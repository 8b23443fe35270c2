"""The caller is resolved once per request (issue 9): with per-plan rate limits and an Idempotency-Key
in play, one credential lookup (API key joined to its user, or the JWT's user) and one JWT decode.

Before (each layer resolved on its own), SQL statements / credential SELECTs / JWT decodes:
GET /users/me (JWT) 2/1/3 cold plan cache, 1/1/2 warm; GET /analysis?limit=5 (API key) 7/3/0 on
first use, 4/2/0 after; POST /api-keys (API key, Idempotency-Key) 6/3/0. After: 1/1/1, 1/1/1; 4/1/0,
3/1/0; 4/1/0."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import Account, create_key, running, sign_up
from fastapi import FastAPI
from sqlalchemy import event

from callcov.auth import jwt as callcov_jwt
from callcov.main import create_app
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio

PLANS = {"starter": {"default": 1000}}


@dataclass
class Tally:
    statements: list[str] = field(default_factory=list)
    decodes: int = 0

    def tables(self) -> Counter[str]:
        """How many statements read or wrote each table (its first FROM/UPDATE/INSERT INTO)."""
        found: Counter[str] = Counter()
        for sql in self.statements:
            match = re.search(r"\b(?:FROM|UPDATE|INSERT INTO)\s+\"?(\w+)", sql, re.IGNORECASE)
            found[match.group(1) if match else sql.split()[0]] += 1
        return found

    def credential_lookups(self) -> int:
        """SELECTs that look the caller up: of ``api_keys`` or ``users`` (the join counts once)."""
        return sum(
            1
            for sql in self.statements
            if sql.lstrip().upper().startswith("SELECT")
            and re.search(r"\bFROM\s+\"?(api_keys|users)\b", sql, re.IGNORECASE)
        )


@contextmanager
def tally(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tally]:
    counts = Tally()
    engine = state_of_app(app).engine.sync_engine
    decode = callcov_jwt._decode

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts.statements.append(statement)

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        counts.decodes += 1
        return decode(*args, **kwargs)

    event.listen(engine, "before_cursor_execute", record)
    with monkeypatch.context() as patched:
        patched.setattr(callcov_jwt, "_decode", counting_decode)
        try:
            yield counts
        finally:
            event.remove(engine, "before_cursor_execute", record)


@dataclass
class Caller:
    app: FastAPI
    client: httpx.AsyncClient
    account: Account
    api_key: str


@pytest_asyncio.fixture
async def caller(client: httpx.AsyncClient, app: FastAPI, settings_factory: Any) -> AsyncIterator[Caller]:
    """A user with a live API key, and an app with per-plan limits (so a cold plan cache) to call."""
    account = await sign_up(client, app)
    api_key = await create_key(client, account, "live")
    limited = create_app(settings_factory(ratelimit={"plans": PLANS}))
    async with running(limited) as limited_client:
        yield Caller(limited, limited_client, account, api_key)


async def measure(
    caller: Caller, monkeypatch: pytest.MonkeyPatch, method: str, path: str, **kw: Any
) -> Tally:
    with tally(caller.app, monkeypatch) as counts:
        response = await caller.client.request(method, path, **kw)
    assert response.status_code < 500, response.text
    return counts


async def test_jwt_request_decodes_once_and_looks_the_user_up_once(
    caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):  # cold, then warm plan cache
        counts = await measure(caller, monkeypatch, "GET", "/api/v1/users/me", headers=caller.account.headers)
        assert counts.decodes == 1
        assert counts.credential_lookups() == 1, counts.statements
        assert len(counts.statements) == 1, counts.statements
        assert "JOIN subscriptions" in counts.statements[0]  # the plan, for the per-plan limits


async def test_api_key_request_looks_the_key_up_once(caller: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = {"X-API-Key": caller.api_key}
    cold = await measure(caller, monkeypatch, "GET", "/api/v1/analysis?limit=5", headers=headers)
    warm = await measure(caller, monkeypatch, "GET", "/api/v1/analysis?limit=5", headers=headers)
    for counts in (cold, warm):
        assert counts.decodes == 0
        assert counts.credential_lookups() == 1, counts.statements
        assert counts.tables()["subscriptions"] == 0, counts.statements  # joined into the lookup
    # The first use also stamps last_used_at; the second is within the resolution and does not.
    assert cold.tables()["api_keys"] == 2 and warm.tables()["api_keys"] == 1, cold.statements


async def test_idempotent_post_with_api_key_looks_the_key_up_once(
    caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    await measure(
        caller, monkeypatch, "GET", "/api/v1/analysis?limit=5", headers={"X-API-Key": caller.api_key}
    )
    headers = {"X-API-Key": caller.api_key, "Idempotency-Key": str(uuid.uuid4())}
    counts = await measure(caller, monkeypatch, "POST", "/api/v1/api-keys", json={}, headers=headers)
    assert counts.decodes == 0
    assert counts.credential_lookups() == 1, counts.statements
    assert counts.tables()["subscriptions"] == 0, counts.statements


BAD_CREDENTIALS = [
    {"Authorization": "Bearer not-a-jwt"},
    {"X-API-Key": "sk_live_made_up"},
    {"Authorization": "Bearer sk_test_made_up"},
]


@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
async def test_a_bad_credential_is_refused_on_every_route(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
) -> None:
    """A failed resolution refuses the request, public routes included (issue 12: before, public
    routes ignored a bad credential, and a made-up key got a rate-limit bucket of its own)."""
    account = await sign_up(client, app)
    with_key = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    login = {"email": account.email, "password": account.password}
    r = await client.post("/api/v1/auth/login", json=login, headers=with_key)
    assert r.status_code == 401 and "access_token" not in r.text
    assert (await client.get("/api/v1/billing/tiers", headers=headers)).status_code == 401
    denied = await client.get("/api/v1/users/me", headers=headers)
    assert denied.status_code == 401
    expected = "Invalid API key" if "sk_" in str(headers) else "Could not validate credentials"
    assert denied.json()["detail"] == expected


async def test_a_malformed_api_key_costs_no_query(caller: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys carry a checksum: a string that is not one is refused before the database."""
    counts = await measure(caller, monkeypatch, "GET", "/api/v1/analysis", headers={"X-API-Key": "sk_live_x"})
    assert counts.statements == []


async def test_missing_and_deactivated_credentials_keep_their_errors(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    missing = await client.get("/api/v1/users/me")
    assert missing.status_code == 401 and missing.json()["detail"] == "Not authenticated"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    account = await sign_up(client, app)
    assert (await client.delete("/api/v1/users/me", headers=account.headers)).status_code == 200
    gone = await client.get("/api/v1/users/me", headers=account.headers)
    assert gone.status_code == 401 and gone.json()["detail"] == "Could not validate credentials"


async def test_the_principals_user_can_be_changed_by_the_route(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The user resolved at the edge is merged into the route's session: its changes are saved."""
    account = await sign_up(client, app)
    phone = "+1202555" + str(uuid.uuid4().int)[:4]
    r = await client.put("/api/v1/users/me", json={"phone_number": phone}, headers=account.headers)
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/users/me", headers=account.headers)).json()["phone_number"] == phone
