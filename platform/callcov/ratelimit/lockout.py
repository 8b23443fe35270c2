"""Lockout with a growing backoff, per key (a login's email): after ``free_attempts`` attempts that
were not cleared by a success, each further attempt locks the key for ``base_s`` doubled per extra
attempt, up to ``max_s``. An attempt counts as a failure from the moment it starts (cleared on
success), so concurrent guesses cannot slip past the lock. Atomic in Redis across processes;
in-process (bounded) without Redis or while it is unreachable."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from callcov.kit.tokens import sha256_hex

logger = logging.getLogger("callcov.ratelimit")

# KEYS: the attempts counter, the lock. ARGV: free attempts, base_s, max_s, memory_s.
# Returns the lock's remaining milliseconds, or 0 when the attempt may go ahead (and is counted).
_ATTEMPT_SCRIPT = """
local locked = redis.call('PTTL', KEYS[2])
if locked > 0 then return locked end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local free = tonumber(ARGV[1])
if free > 0 and n >= free then
  local lock = math.min(tonumber(ARGV[2]) * 2 ^ (n - free), tonumber(ARGV[3]))
  redis.call('SET', KEYS[2], '1', 'EX', math.floor(lock))
end
return 0
"""


@dataclass(frozen=True)
class LockoutPolicy:
    free_attempts: int
    base_s: int
    max_s: int
    # How long failures are remembered after the last one.
    memory_s: int = 24 * 3600

    def lock_s(self, attempts: int) -> int:
        """The lock set by the ``attempts``-th uncleared attempt (0: none; never with no free attempts
        configured, which turns the lockout off)."""
        if self.free_attempts == 0 or attempts < self.free_attempts:
            return 0
        return int(min(self.base_s * 2 ** min(attempts - self.free_attempts, 32), self.max_s))


class Lockout(Protocol):
    async def attempt(self, key: str) -> int:
        """0 when the attempt may go ahead (it is counted until ``clear``), else the seconds until
        the key's lock ends."""
        ...

    async def clear(self, key: str) -> None: ...


class MemoryLockout:
    def __init__(self, policy: LockoutPolicy, max_keys: int = 100_000) -> None:
        self.policy = policy
        self._max_keys = max_keys
        # key -> (uncleared attempts, locked until, forgotten at), least recently used first
        self._keys: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    async def attempt(self, key: str) -> int:
        now = time.time()
        attempts, locked_until, forget_at = self._keys.pop(key, (0, 0.0, 0.0))
        if forget_at <= now:
            attempts, locked_until = 0, 0.0
        if locked_until > now:
            self._keys[key] = (attempts, locked_until, forget_at)
            return max(1, math.ceil(locked_until - now))
        attempts += 1
        self._keys[key] = (attempts, now + self.policy.lock_s(attempts), now + self.policy.memory_s)
        if len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)
        return 0

    async def clear(self, key: str) -> None:
        self._keys.pop(key, None)


class RedisLockout:
    def __init__(self, redis: Any, prefix: str, policy: LockoutPolicy) -> None:
        self.policy = policy
        self._redis = redis
        self._script = redis.register_script(_ATTEMPT_SCRIPT)
        self._prefix = prefix
        self._fallback = MemoryLockout(policy)

    def _keys(self, key: str) -> list[str]:
        base = f"{self._prefix}lockout:{key}"
        return [f"{base}:n", f"{base}:lock"]

    async def attempt(self, key: str) -> int:
        p = self.policy
        try:
            locked_ms = int(
                await self._script(
                    keys=self._keys(key), args=[p.free_attempts, p.base_s, p.max_s, p.memory_s]
                )
            )
        except Exception as exc:  # redis.RedisError or a connection failure: keep serving
            logger.warning("Redis lockout unavailable, counting in-process: %s", exc)
            return await self._fallback.attempt(key)
        return max(1, math.ceil(locked_ms / 1000)) if locked_ms > 0 else 0

    async def clear(self, key: str) -> None:
        await self._fallback.clear(key)
        try:
            await self._redis.delete(*self._keys(key))
        except Exception as exc:
            logger.warning("Redis lockout unavailable, not cleared: %s", exc)


def login_key(email: str) -> str:
    """Emails are kept out of Redis and memory dumps: the key is a hash of the normalised address."""
    return "login:" + sha256_hex(email.strip().lower())[:32]
