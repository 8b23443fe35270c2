"""Billing reads: the account's subscription (created on free at first use, rolled over to the
current period) and the minutes and overage of its period. Plan changes are in ``changes.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.principal import Principal
from callcov.billing.ledger import PeriodOverage, period_overage
from callcov.billing.metering import overage_cap
from callcov.billing.repository import locked_subscription
from callcov.billing.subscription_state import roll_if_due
from callcov.config import BillingSettings
from callcov.models import Subscription


@dataclass(frozen=True)
class BillingView:
    sub: Subscription
    overage: PeriodOverage
    overage_cap_minutes: int | None


async def current(session: AsyncSession, user_id: uuid.UUID) -> Subscription:
    """The account's subscription (free if it had none), rolled over to the period of now."""
    sub = await locked_subscription(session, user_id)
    if await roll_if_due(session, sub):
        await session.flush()
    return sub


async def view(session: AsyncSession, principal: Principal, settings: BillingSettings) -> BillingView:
    """The subscription and the minutes of its period. Test mode records no usage: a test key sees
    the plan with zero usage."""
    sub = await current(session, principal.account_id)
    start, end = sub.current_period_start, sub.current_period_end
    if not principal.livemode:
        nothing = PeriodOverage(start, end, 0.0, 0, sub.tier, 0.0, 0, 0.0, 0)
        return BillingView(sub, nothing, None)
    overage = await period_overage(session, sub.user_id, start, end, sub.tier)
    return BillingView(sub, overage, overage_cap(sub, settings))
