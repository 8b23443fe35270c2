"""The overage of a billing period, segment by segment, and what has been billed for it.

A plan change in the middle of a period (upgrade, downgrade, a cancellation that takes effect now) is
recorded in ``plan_changes`` and cuts the period into segments. At the end of each segment the overage
of the minutes used so far is settled at the plan of that segment. The minutes used stay counted in the
period, less those already settled as overage, so the next plan's included minutes cover only minutes
that were never billed: a change never reprices minutes already used, and never frees them either.

What has been billed for a period is the sum of its ``usage_reports`` (Stripe invoice items, and the
local ledger's overage invoices), so every billing step sends the difference between what is due and
what was billed: nothing is billed twice, and a refund (a failed analysis) comes out as a negative
difference, a credit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing.plans import plan_of
from callcov.billing.repository import period_usage
from callcov.models import PlanChange, UsageReport


@dataclass(frozen=True)
class Segment:
    end: datetime
    tier: str


@dataclass(frozen=True)
class PeriodOverage:
    start: datetime
    end: datetime
    used: float  # minutes recorded in the period (refunded ones excluded)
    count: int
    tier: str  # the plan of the last segment (for the current period: the plan in force)
    settled_minutes: float  # overage minutes of the earlier segments, each at its own plan
    settled_cents: int
    open_minutes: float  # overage minutes of the last segment so far, at ``tier``
    open_cents: int

    @property
    def counted(self) -> float:
        """The minutes the plan in force counts against its included minutes."""
        return max(0.0, self.used - self.settled_minutes)

    @property
    def minutes(self) -> float:
        return self.settled_minutes + self.open_minutes

    @property
    def cents(self) -> int:
        return self.settled_cents + self.open_cents

    def closed_cents(self, *, ended: bool) -> int:
        """The cost of the segments that have ended: the whole period once it is over."""
        return self.cents if ended else self.settled_cents

    def closed_minutes(self, *, ended: bool) -> float:
        return self.minutes if ended else self.settled_minutes


async def segments(
    session: AsyncSession, user_id: uuid.UUID, start: datetime, end: datetime, tier: str
) -> list[Segment]:
    """The plan segments of [start, end): cut at each plan change strictly inside it. ``tier`` is the
    plan of the last segment when no change is recorded in the period."""
    changes = (
        await session.exec(
            select(PlanChange)
            .where(PlanChange.user_id == user_id, col(PlanChange.at) > start, col(PlanChange.at) < end)
            .order_by(col(PlanChange.at), col(PlanChange.created_at))
        )
    ).all()
    cut = [Segment(end=change.at, tier=change.tier_before) for change in changes]
    return [*cut, Segment(end=end, tier=changes[-1].tier_after if changes else tier)]


async def period_overage(
    session: AsyncSession, user_id: uuid.UUID, start: datetime, end: datetime, tier: str
) -> PeriodOverage:
    parts = await segments(session, user_id, start, end, tier)
    settled_minutes, settled_cents = 0.0, 0
    for segment in parts[:-1]:
        used = await period_usage(session, user_id, start, segment.end)
        plan = plan_of(segment.tier)
        overage = plan.overage_minutes(used.minutes - settled_minutes)
        settled_minutes, settled_cents = settled_minutes + overage, settled_cents + plan.cents_for(overage)
    total = await period_usage(session, user_id, start, end)
    last = plan_of(parts[-1].tier)
    open_minutes = last.overage_minutes(total.minutes - settled_minutes)
    return PeriodOverage(
        start=start,
        end=end,
        used=total.minutes,
        count=total.count,
        tier=last.tier,
        settled_minutes=settled_minutes,
        settled_cents=settled_cents,
        open_minutes=open_minutes,
        open_cents=last.cents_for(open_minutes),
    )


async def billed(session: AsyncSession, user_id: uuid.UUID, period_start: datetime) -> int:
    """Cents billed (or being sent to Stripe) for the overage of the period starting at ``period_start``."""
    total = (
        await session.exec(
            select(func.coalesce(func.sum(UsageReport.amount), 0)).where(
                UsageReport.user_id == user_id, UsageReport.period_start == period_start
            )
        )
    ).one()
    return int(total)


def record_change(session: AsyncSession, user_id: uuid.UUID, at: datetime, before: str, after: str) -> None:
    session.add(PlanChange(user_id=user_id, at=at, tier_before=before, tier_after=after))


async def settle_local(
    session: AsyncSession, user_id: uuid.UUID, overage: PeriodOverage, now: datetime, *, ended: bool
) -> int:
    """The local ledger's step: bill (or credit) what the ended segments of the period (all of them
    once the period has ``ended``) cost beyond what was billed for it. Records the amount as a
    confirmed report and returns it; the caller writes the invoice (alone, or with the next period's
    price)."""
    amount = overage.closed_cents(ended=ended) - await billed(session, user_id, overage.start)
    if amount != 0:
        session.add(
            UsageReport(
                user_id=user_id,
                period_start=overage.start,
                tier=overage.tier,
                overage_minutes=overage.closed_minutes(ended=ended),
                amount=amount,
                status="confirmed",
                confirmed_at=now,
            )
        )
    return amount
