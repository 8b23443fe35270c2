"""Fixed-window rate counting: atomic in Redis across processes, in-process when no Redis is configured."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
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
    """Counts in this process only: right for one process, undercounts across several (use Redis).

    One entry per key (its window's end and count), kept in least-recently-used order: expired
    windows are dropped from the front as they come, and past ``max_keys`` the least recently used
    key goes, so memory stays bounded and no request pays for more than what it evicts."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    async def hit(self, key: str, limit: int, window_s: int) -> Decision:
        now = time.time()
        _, window_end = _window(window_s, now)
        self._evict_expired(now)
        end, count = self._counts.pop(key, (window_end, 0))
        count = count + 1 if end == window_end else 1
        self._counts[key] = (window_end, count)
        if len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)
        return _decide(count, limit, window_end)

    def _evict_expired(self, now: float) -> None:
        while self._counts:
            key, (end, _) = next(iter(self._counts.items()))
            if end > now:
                return
            del self._counts[key]


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
