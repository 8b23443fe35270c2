"""Fixed-window rate counting: atomic in Redis across processes, in-process when no Redis is configured."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("callcov.ratelimit")

# INCR and set the expiry in one step, so a crash between the two can never leave a counter without TTL.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset: int  # Unix seconds when the window ends
    allowed: bool

    @property
    def retry_after(self) -> int:
        return max(1, self.reset - int(time.time()))

    def headers(self) -> dict[str, str]:
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after)
        return values


def _decide(count: int, limit: int, window_end: int) -> Decision:
    return Decision(limit=limit, remaining=max(0, limit - count), reset=window_end, allowed=count <= limit)


def _window(window_s: int, now: float) -> tuple[int, int]:
    index = int(now // window_s)
    return index, (index + 1) * window_s


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: int) -> Decision: ...


class MemoryRateLimiter:
    """Counts in this process only: right for one process, undercounts across several (use Redis)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    async def hit(self, key: str, limit: int, window_s: int) -> Decision:
        index, window_end = _window(window_s, time.time())
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= index}
        count = self._counts.get((key, index), 0) + 1
        self._counts[(key, index)] = count
        return _decide(count, limit, window_end)


class RedisRateLimiter:
    """One atomic script call per request; falls back to counting in-process while Redis is unreachable."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self._script = redis.register_script(_HIT_SCRIPT)
        self._prefix = prefix
        self._fallback = MemoryRateLimiter()

    async def hit(self, key: str, limit: int, window_s: int) -> Decision:
        index, window_end = _window(window_s, time.time())
        try:
            count = int(await self._script(keys=[f"{self._prefix}rl:{key}:{index}"], args=[window_s + 1]))
        except Exception as exc:  # redis.RedisError or a connection failure: keep serving
            logger.warning("Redis rate limiting unavailable, counting in-process: %s", exc)
            return await self._fallback.hit(key, limit, window_s)
        return _decide(count, limit, window_end)
