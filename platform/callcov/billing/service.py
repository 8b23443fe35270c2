"""Billing reads: the account's subscription (created on free at first use, rolled over to the
current period) and the minutes of its period. Plan changes are in ``changes.py``."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.principal import Principal
from callcov.billing.repository import PeriodUsage, locked_subscription, period_usage
from callcov.billing.subscription_state import roll_if_due
from callcov.models import Subscription


async def current(session: AsyncSession, user_id: uuid.UUID) -> Subscription:
    """The account's subscription (free if it had none), rolled over to the period of now."""
    sub = await locked_subscription(session, user_id)
    if await roll_if_due(session, sub):
        await session.flush()
    return sub


async def view(session: AsyncSession, principal: Principal) -> tuple[Subscription, PeriodUsage]:
    """The subscription and the minutes of its period. Test mode records no usage: a test key sees
    the plan with zero usage."""
    sub = await current(session, principal.account_id)
    if not principal.livemode:
        return sub, PeriodUsage(0.0, 0)
    usage = await period_usage(session, sub.user_id, sub.current_period_start, sub.current_period_end)
    return sub, usage
