"""Per-plan rate limits (``CALLCOV_RATELIMIT__PLANS``): the plan of a request's account, looked up
only when per-plan limits are configured, and cached in-process for a minute per credential."""

from __future__ import annotations

import time
from collections.abc import Mapping

from callcov.auth.middleware import Caller

CACHE_TTL_S = 60.0
CACHE_MAX = 10_000


class PlanLookup:
    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def tier(self, caller: Caller, identity: str) -> str | None:
        """The account's tier ("free" before its first billing use), None without a valid credential.
        On a miss, the caller's one resolution (which then includes the plan) is done here."""
        now = time.monotonic()
        cached = self._cache.get(identity)
        if cached is not None and cached[0] > now:
            return cached[1]
        resolution = await caller.resolution()
        tier = resolution.tier if resolution.account is not None else None
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[identity] = (now + self.ttl_s, tier)
        return tier


def plan_limit(plans: Mapping[str, Mapping[str, int]], tier: str | None, bucket: str, default: int) -> int:
    return plans.get(tier or "", {}).get(bucket, default)
