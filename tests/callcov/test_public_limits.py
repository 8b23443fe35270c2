"""Public endpoints (issue 12, finding 1): an unvalidated credential never gets a bucket of its own,
unauthenticated requests are counted per client address (X-Forwarded-For only from trusted proxies),
failed logins lock the email out with a growing backoff, and reset mail is limited per email."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest
from conftest import PASSWORD, REDIS_URL, create_key, last_email_token, sign_up, unique_email
from sqlmodel import col, func, select
from test_ratelimit import clear_of_window_edge

from callcov.models import EmailMessage
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio


def app_of(client: httpx.AsyncClient) -> Any:
    return client._transport.app  # type: ignore[attr-defined]


def fake_key(mode: str = "live") -> str:
    return f"sk_{mode}_" + secrets.token_hex(24)


class TestUnvalidatedCredentials:
    async def test_rotating_fake_keys_share_the_address_bucket(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        """Before: each made-up key got a fresh bucket, so 130 logins never saw a 429."""
        clear_of_window_edge()
        login = {"email": unique_email(), "password": "Wr0ng-password!"}
        async with app_factory(ratelimit={"default_per_window": 4, "auth_per_window": 4}) as client:
            codes = []
            for i in range(7):
                header = (
                    {"X-API-Key": fake_key()} if i % 2 else {"Authorization": f"Bearer {fake_key('test')}"}
                )
                r = await client.post("/api/v1/auth/login", json=login, headers=header)
                codes.append(r.status_code)
        assert codes == [401] * 4 + [429] * 3

    async def test_a_bad_credential_is_refused_on_a_public_route(self, client: httpx.AsyncClient) -> None:
        account = await sign_up(client, app_of(client))
        login = {"email": account.email, "password": account.password}
        for headers in ({"X-API-Key": fake_key()}, {"Authorization": "Bearer not-a-jwt"}):
            r = await client.post("/api/v1/auth/login", json=login, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", headers
            assert "access_token" not in r.text
        assert (await client.post("/api/v1/auth/login", json=login)).status_code == 200

    async def test_valid_keys_are_counted_each_on_its_own(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        clear_of_window_edge()
        async with app_factory(ratelimit={"default_per_window": 2}) as client:
            account = await sign_up(client, app_of(client))
            first, second = await create_key(client, account), await create_key(client, account)
            codes = [
                (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).status_code
                for key in (first, first, first, second)
            ]
        assert codes == [200, 200, 429, 200]


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


class TestClientAddress:
    async def test_forwarded_for_counts_only_from_a_trusted_proxy(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        """The test client connects from 127.0.0.1, configured here as the proxy."""
        clear_of_window_edge()
        limits = {"default_per_window": 2, "trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"]}
        async with app_factory(ratelimit=limits) as client:

            async def code(headers: dict[str, str]) -> int:
                return (await client.get("/api/v1/users/me", headers=headers)).status_code

            assert [await code(forwarded("203.0.113.7")) for _ in range(3)] == [401, 401, 429]
            assert await code(forwarded("198.51.100.1")) == 401  # another client, its own bucket
            # A client cannot pick its bucket: the right-most untrusted address is the client.
            assert await code(forwarded("198.51.100.99, 203.0.113.7")) == 429
            assert await code(forwarded("203.0.113.7, 10.1.2.3")) == 429  # behind two proxies

    async def test_forwarded_for_is_ignored_without_trusted_proxies(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        clear_of_window_edge()
        async with app_factory(ratelimit={"default_per_window": 2}) as client:
            codes = [
                (await client.get("/api/v1/users/me", headers=forwarded(f"203.0.113.{i}"))).status_code
                for i in range(3)
            ]
        assert codes == [401, 401, 429]

    async def test_client_address_rules(self) -> None:
        from ipaddress import ip_network

        from callcov.ratelimit.client import client_address

        proxies = [ip_network("10.0.0.0/8")]

        def address(peer: str, header: str | None = None) -> str:
            headers = [(b"x-forwarded-for", header.encode())] if header is not None else []
            return client_address({"client": (peer, 1234), "headers": headers}, proxies)

        assert address("203.0.113.7", "1.2.3.4") == "203.0.113.7"  # untrusted peer: header ignored
        assert address("10.0.0.1", "1.2.3.4, 5.6.7.8") == "5.6.7.8"
        assert address("10.0.0.1", "1.2.3.4, 10.9.9.9") == "1.2.3.4"
        assert address("10.0.0.1", "not-an-ip, 10.9.9.9") == "10.9.9.9"  # garbage ends the walk
        assert address("10.0.0.1") == "10.0.0.1"
        assert address("10.0.0.1", "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"  # IPv6 per /64
        assert address("::ffff:203.0.113.7") == "203.0.113.7"


class TestLoginLockout:
    LIMITS = {"login_free_attempts": 3, "login_lockout_s": 60}

    async def test_failures_lock_the_email_whether_or_not_it_exists(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        async with app_factory(ratelimit=self.LIMITS) as client:
            account = await sign_up(client, app_of(client))
            for email in (account.email, unique_email()):
                wrong = {"email": email, "password": "Wr0ng-password!"}
                codes = [(await client.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(3)]
                assert codes == [401] * 3
                right = {"email": email, "password": PASSWORD}
                locked = await client.post("/api/v1/auth/login", json=right)
                assert locked.status_code == 429, email
                assert locked.json()["error"]["code"] == "rate_limit_exceeded"
                assert 50 <= int(locked.headers["Retry-After"]) <= 60
            # Other emails are not affected.
            other = await sign_up(client, app_of(client))
            ok = await client.post("/api/v1/auth/login", json={"email": other.email, "password": PASSWORD})
            assert ok.status_code == 200

    async def test_a_successful_login_clears_the_failures(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        async with app_factory(ratelimit=self.LIMITS) as client:
            account = await sign_up(client, app_of(client))
            wrong = {"email": account.email, "password": "Wr0ng-password!"}
            right = {"email": account.email.upper(), "password": PASSWORD}
            for _ in range(2):
                assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
            assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200
            codes = [(await client.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(4)]
            assert codes == [401, 401, 401, 429]

    @pytest.mark.parametrize("backend", ["memory", "redis"])
    async def test_the_lockout_grows(self, backend: str) -> None:
        from redis.asyncio import Redis

        from callcov.ratelimit.lockout import LockoutPolicy, MemoryLockout, RedisLockout

        policy = LockoutPolicy(free_attempts=2, base_s=1, max_s=3)
        if backend == "memory":
            await self._grow(MemoryLockout(policy))
            return
        async with Redis.from_url(REDIS_URL) as redis:
            await self._grow(RedisLockout(redis, f"cctest:{secrets.token_hex(8)}:", policy))

    async def _grow(self, lockout: Any) -> None:
        key = unique_email()
        assert [await lockout.attempt(key) for _ in range(2)] == [0, 0]  # the 2nd sets a 1 s lock
        assert 0 < await lockout.attempt(key) <= 1
        await asyncio.sleep(1.1)
        assert await lockout.attempt(key) == 0  # the 3rd failure: locked 2 s
        assert 1 < await lockout.attempt(key) <= 2
        await asyncio.sleep(2.1)
        assert await lockout.attempt(key) == 0  # the 4th: 4 s, capped at 3
        assert 2 < await lockout.attempt(key) <= 3
        await lockout.clear(key)
        assert await lockout.attempt(key) == 0


async def reset_emails(app: Any, email: str) -> int:
    async with state_of_app(app).sessionmaker() as session:
        query = select(func.count()).select_from(EmailMessage)
        query = query.where(col(EmailMessage.to_address) == email, col(EmailMessage.kind) == "password_reset")
        return int((await session.exec(query)).one())


class TestResetMailPerEmail:
    async def test_beyond_three_an_hour_nothing_is_sent_and_the_last_link_works(
        self, client: httpx.AsyncClient
    ) -> None:
        app = app_of(client)
        account = await sign_up(client, app)
        body = {"email": account.email}
        answers = []
        for i in range(5):
            answers.append(await client.post("/api/v1/auth/password-reset", json=body))
            if i == 2:
                token = await last_email_token(app, account.email, "password_reset")
        assert {r.status_code for r in answers} == {200}
        assert len({r.text for r in answers}) == 1  # the same answer: nothing is revealed
        assert await reset_emails(app, account.email) == 3
        confirm = {"token": token, "new_password": "N3w-passw0rd!"}
        r = await client.post("/api/v1/auth/password-reset/confirm", json=confirm)
        assert r.status_code == 200, r.text


class TestMemoryLimiter:
    async def test_a_full_limiter_does_not_rebuild_on_every_request(self) -> None:
        """Before: past 10k keys, every hit copied the whole dict (O(n) per request)."""
        from callcov.ratelimit.limiter import MemoryRateLimiter

        limiter = MemoryRateLimiter(max_keys=1000)
        for i in range(3000):
            await limiter.hit(f"k{i}", 5, 60)
        assert len(limiter) <= 1000  # bounded: least recently used keys go first
        for i in range(2990, 3000):
            assert (await limiter.hit(f"k{i}", 5, 60)).remaining == 3  # recent keys kept their counts
        big = MemoryRateLimiter()
        for i in range(10_500):
            await big.hit(f"k{i}", 5, 60)
        started = time.perf_counter()
        for _ in range(2000):
            await big.hit("hot", 10_000, 60)
        assert time.perf_counter() - started < 0.5

    async def test_expired_windows_are_evicted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from callcov.ratelimit import limiter as module

        now = [1_000_000.0]
        monkeypatch.setattr(module.time, "time", lambda: now[0])
        limiter = module.MemoryRateLimiter()
        for i in range(100):
            await limiter.hit(f"k{i}", 5, 60)
        now[0] += 120
        await limiter.hit("fresh", 5, 60)
        assert len(limiter) == 1
