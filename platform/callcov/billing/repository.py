"""Billing queries: the subscription row (created on free at first use, locked per account), and the
minutes of a period (refunded records excluded)."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.db import insert_ignoring_conflict
from callcov.kit.time import utcnow
from callcov.models import Subscription, UsageRecord


def add_month(value: datetime, months: int = 1) -> datetime:
    month = value.month - 1 + months
    year, month = value.year + month // 12, month % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def period_now() -> datetime:
    """Now, to the second: period bounds are whole seconds, as Stripe's are."""
    return utcnow().replace(microsecond=0)


async def _insert_free(session: AsyncSession, user_id: uuid.UUID) -> None:
    """INSERT … ON CONFLICT DO NOTHING: concurrent first uses create one row. On SQLite this write
    also takes the database's write lock, which serialises the rest of the transaction."""
    now = period_now()
    row = Subscription(
        id=uuid.uuid4(),
        user_id=user_id,
        tier="free",
        status="active",
        provider="local",
        current_period_start=now,
        current_period_end=add_month(now),
        cancel_at_period_end=False,
        created_at=now,
        updated_at=now,
    )
    await insert_ignoring_conflict(session, row, conflict_on=["user_id"])


async def locked_subscription(session: AsyncSession, user_id: uuid.UUID) -> Subscription:
    """The account's subscription, locked until the transaction ends (row lock on PostgreSQL, the
    write lock on SQLite): metering, plan changes and Stripe events of one account run one at a time."""
    await _insert_free(session, user_id)
    query = select(Subscription).where(Subscription.user_id == user_id).with_for_update()
    subscription = (await session.exec(query.execution_options(populate_existing=True))).one()
    return subscription


async def find_by_stripe(
    session: AsyncSession, *, subscription_id: str | None, customer_id: str | None
) -> Subscription | None:
    for column, value in (
        (Subscription.stripe_subscription_id, subscription_id),
        (Subscription.stripe_customer_id, customer_id),
    ):
        if value:
            query = select(Subscription).where(column == value).with_for_update()
            found = (await session.exec(query.execution_options(populate_existing=True))).first()
            if found is not None:
                return found
    return None


# Analyses are counted by their submission's record; a retranscription's adds minutes only.
SUBMISSION = case((col(UsageRecord.rescore_id).is_(None), 1), else_=0)


@dataclass(frozen=True)
class PeriodUsage:
    minutes: float
    count: int


async def period_usage(
    session: AsyncSession, user_id: uuid.UUID, start: datetime, end: datetime
) -> PeriodUsage:
    row = (
        await session.exec(
            select(
                func.coalesce(func.sum(UsageRecord.minutes), 0.0), func.coalesce(func.sum(SUBMISSION), 0)
            ).where(
                UsageRecord.user_id == user_id,
                col(UsageRecord.created_at) >= start,
                col(UsageRecord.created_at) < end,
                col(UsageRecord.voided_at).is_(None),  # refunded: a failed analysis
            )
        )
    ).one()
    return PeriodUsage(minutes=float(row[0]), count=int(row[1]))
