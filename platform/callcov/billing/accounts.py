"""Billing of the account as a whole: ending it when the user deactivates the account, and the
account's own overage cap (set by an operator: ``callcov set-overage-cap``)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing import changes
from callcov.billing.errors import SubscriptionConflict
from callcov.billing.repository import locked_subscription
from callcov.config import BillingSettings
from callcov.kit.time import utcnow
from callcov.models import Job, Subscription, User
from callcov.worker import queue

CLOSE_ACCOUNT_JOB = "billing.close_account"


def schedule_close(session: AsyncSession, user_id: uuid.UUID, *, max_attempts: int = 50) -> Job:
    """Queued in the deactivation's transaction: the account is deactivated exactly when its billing
    will be closed, and a crash after the commit leaves the job to be run (and retried)."""
    return queue.enqueue(session, CLOSE_ACCOUNT_JOB, {"user_id": str(user_id)}, max_attempts=max_attempts)


async def close_account(
    sessionmaker: async_sessionmaker[AsyncSession], settings: BillingSettings, user_id: uuid.UUID
) -> None:
    """The job: cancel the paid plan now, as ``POST /billing/subscription/cancel {at_period_end:
    false}`` does (its overage billed; with Stripe, the subscription cancelled with a final invoice).
    Idempotent: an account already on free has nothing to end, and a Stripe subscription found
    cancelled (a retry after a crash) is applied as is."""
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
        if user is None:
            return
        try:
            await changes.cancel(session, settings, user, at_period_end=False)
        except SubscriptionConflict:  # on free: nothing to end
            await session.rollback()
            return
        await session.commit()


async def set_overage_cap(session: AsyncSession, user_id: uuid.UUID, minutes: int | None) -> Subscription:
    """The account's cap on overage minutes per period; None: back to its plan's default."""
    if minutes is not None and minutes < 0:
        raise ValueError("the overage cap is a number of minutes, 0 or more")
    sub = await locked_subscription(session, user_id)
    sub.overage_cap_minutes, sub.updated_at = minutes, utcnow()
    session.add(sub)
    return sub
