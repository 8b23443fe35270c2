"""Process-wide resources built in the app's lifespan, and typed accessors to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import Settings
from callcov.worker.wake import Waker

if TYPE_CHECKING:
    from callcov.emails.sender import EmailSender
    from callcov.ratelimit.limiter import RateLimiter
    from callcov.ratelimit.lockout import Lockout
    from callcov.storage.objects import Storage


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Autocommit sessions for the caller's lookup at the edge: one round trip, no transaction.
    lookups: async_sessionmaker[AsyncSession]
    redis: Any  # redis.asyncio.Redis | None
    limiter: RateLimiter
    login_lockout: Lockout  # failed logins per email (callcov.ratelimit.lockout)
    email_sender: EmailSender
    storage: Storage
    waker: Waker  # wakes the dispatcher's runner of a job kind after a commit


def state_of_app(app: Any) -> AppState:
    state: AppState = app.state.callcov
    return state


def get_state(request: Request) -> AppState:
    return state_of_app(request.app)


StateDep = Annotated[AppState, Depends(get_state)]
