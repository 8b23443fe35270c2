"""Wake-ups per job kind: a process that enqueued a job tells the dispatcher which kind is due now,
so the runner of that kind claims it at once instead of at its next poll. Losing a wake-up loses
nothing (the runners poll anyway), so publishing never fails the caller.

The message on ``<key_prefix>jobs`` is the job kind. ``listen`` is the dispatcher's side: it hands
each kind to a callback (``Runners.wake``), reconnecting with a pause while Redis is away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import RedisSettings
from callcov.db import after_commit

logger = logging.getLogger("callcov.worker.wake")

WAKE_CHANNEL = "jobs"


class Waker(Protocol):
    async def wake(self, kind: str) -> None:
        """Tell the runner of ``kind`` that a job is due now (best effort)."""


class NoWaker:
    """No Redis: the runners find the work at their next poll."""

    async def wake(self, kind: str) -> None:
        return None


def wake_channel(settings: RedisSettings) -> str:
    return settings.key_prefix + WAKE_CHANNEL


class RedisWaker:
    def __init__(self, redis: Any, channel: str) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.channel = channel

    async def wake(self, kind: str) -> None:
        try:
            await self.redis.publish(self.channel, kind)
        except Exception as exc:
            logger.warning("could not wake the dispatcher: %s", exc)


def build_waker(redis: Any, settings: RedisSettings) -> Waker:
    return NoWaker() if redis is None else RedisWaker(redis, wake_channel(settings))


def wake_after_commit(session: AsyncSession, waker: Waker, *kinds: str) -> None:
    """Wake the runners of ``kinds`` once the session's transaction has committed (so the jobs exist)."""

    async def wake() -> None:
        for kind in dict.fromkeys(kinds):
            await waker.wake(kind)

    after_commit(session, wake)


def _kind(data: object) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


async def listen(
    settings: RedisSettings, on_wake: Callable[[str], None], stop: asyncio.Event, *, retry_s: float
) -> None:
    """Subscribe to the wake-up channel until ``stop``; ``on_wake(kind)`` for each message."""
    from redis.asyncio import Redis

    channel = wake_channel(settings)
    while not stop.is_set():
        try:
            async with Redis.from_url(settings.url) as redis, redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        on_wake(_kind(message.get("data")))
        except Exception as exc:
            logger.warning("wake-up channel unavailable (%s); polling only", exc)
            await asyncio.sleep(retry_s)
