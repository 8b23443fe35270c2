"""Per-credential rate limits: headers on every response, 429 with Retry-After, one count shared by
several app processes through Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import server_env, uvicorn_server

from callcov.ratelimit.limiter import MemoryRateLimiter, RedisRateLimiter

pytestmark = pytest.mark.asyncio


def clear_of_window_edge() -> None:
    """Rate windows are fixed minutes: start a burst well inside one."""
    if time.time() % 60 > 55:
        time.sleep(61 - time.time() % 60)


def assert_headers(response: httpx.Response, limit: int) -> None:
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) <= limit
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())


class TestOneProcess:
    async def test_burst_gets_429_with_headers(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        clear_of_window_edge()
        async with app_factory(ratelimit={"default_per_window": 5}) as client:
            responses = [await client.get("/api/v1/users/me") for _ in range(7)]
        for response in responses:
            assert_headers(response, 5)
        assert [r.status_code for r in responses] == [401] * 5 + [429] * 2
        remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in responses]
        assert remaining == [4, 3, 2, 1, 0, 0, 0]
        limited = responses[-1]
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(limited.headers["Retry-After"]) <= 61

    async def test_unknown_keys_count_against_the_address(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        """A made-up key gets no bucket of its own (issue 12): per key, see test_public_limits."""
        clear_of_window_edge()
        async with app_factory(ratelimit={"default_per_window": 2}) as client:
            for _ in range(2):
                await client.get("/api/v1/users/me", headers={"X-API-Key": "sk_live_first"})
            blocked = await client.get("/api/v1/users/me", headers={"X-API-Key": "sk_live_first"})
            other = await client.get("/api/v1/users/me", headers={"X-API-Key": "sk_live_second"})
        assert blocked.status_code == 429 and other.status_code == 429

    async def test_submissions_have_their_own_smaller_limit(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        clear_of_window_edge()
        async with app_factory(ratelimit={"default_per_window": 50, "submissions_per_window": 2}) as client:
            submits = [await client.post("/api/v1/analysis/", json={}) for _ in range(3)]
            other = await client.get("/api/v1/analysis")
        assert submits[-1].status_code == 429 and submits[0].headers["X-RateLimit-Limit"] == "2"
        assert other.status_code == 401 and other.headers["X-RateLimit-Limit"] == "50"

    async def test_memory_limiter_when_no_redis(self, app_factory) -> None:  # type: ignore[no-untyped-def]
        clear_of_window_edge()
        async with app_factory(redis={"url": ""}, ratelimit={"default_per_window": 1}) as client:
            app = client._transport.app  # type: ignore[attr-defined]
            assert isinstance(app.state.callcov.limiter, MemoryRateLimiter)
            codes = [(await client.get("/api/v1/users/me")).status_code for _ in range(2)]
        assert codes == [401, 429]

    async def test_redis_down_falls_back_in_process(self) -> None:
        from redis.asyncio import Redis

        limiter = RedisRateLimiter(Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2), "x:")
        first = await limiter.hit("k", 1, 60)
        second = await limiter.hit("k", 1, 60)
        assert first.allowed and not second.allowed


@pytest.fixture
def two_servers(pg_url: str) -> Iterator[list[str]]:
    env = server_env(pg_url, CALLCOV_RATELIMIT__DEFAULT_PER_WINDOW="10")
    with uvicorn_server(env) as first, uvicorn_server(env) as second:
        yield [first, second]


async def test_two_processes_share_one_count(two_servers: list[str]) -> None:
    clear_of_window_edge()
    async with httpx.AsyncClient() as client:
        responses = [await client.get(f"{two_servers[i % 2]}/api/v1/users/me") for i in range(15)]
    codes = [r.status_code for r in responses]
    assert codes == [401] * 10 + [429] * 5
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in responses[:10]] == list(range(9, -1, -1))
    assert all("Retry-After" in r.headers for r in responses[10:])
    assert {r.headers["X-RateLimit-Reset"] for r in responses} == {responses[0].headers["X-RateLimit-Reset"]}
