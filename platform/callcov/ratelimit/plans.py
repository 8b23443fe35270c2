"""Per-plan rate limits (``CALLCOV_RATELIMIT__PLANS``): the plan of a request's account, looked up
only when per-plan limits are configured, and cached in-process for a minute per credential."""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlmodel import select
from starlette.datastructures import Headers
from starlette.types import Scope

from callcov.auth.credentials import read_credential
from callcov.auth.principal import resolve_scope
from callcov.models import Subscription
from callcov.state import AppState

CACHE_TTL_S = 60.0
CACHE_MAX = 10_000


class PlanLookup:
    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def tier(self, state: AppState, scope: Scope, identity: str) -> str | None:
        """The account's tier ("free" before its first billing use), None without a valid credential."""
        now = time.monotonic()
        cached = self._cache.get(identity)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with state.sessionmaker() as session:
            owner = await resolve_scope(session, state.settings.auth, read_credential(Headers(scope=scope)))
            tier = None
            if owner is not None:
                query = select(Subscription.tier).where(Subscription.user_id == owner[0])
                tier = (await session.exec(query)).first() or "free"
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[identity] = (now + self.ttl_s, tier)
        return tier


def plan_limit(plans: Mapping[str, Mapping[str, int]], tier: str | None, bucket: str, default: int) -> int:
    return plans.get(tier or "", {}).get(bucket, default)
