"""Reporting overage to Stripe, as invoice items on the subscription's next invoice.

Outbox in two steps: a ``UsageReport`` row (amount, the records it covers) is committed first, then
sent with the idempotency key ``callcov-usage-<report id>``, then confirmed, which sets the records'
``reported_at``. A failure leaves the report pending and the job is retried with backoff; a retry (or
the next job of the account) resends the same report under the same key, so Stripe counts it once and
no usage record is lost. Amounts are cumulative per period: the period's overage cost in whole cents
(rounded half up) minus what earlier reports of the period already sent, so rounding never drifts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing.plans import plan_of
from callcov.billing.provider import Snapshot, open_provider
from callcov.billing.repository import locked_subscription, period_usage
from callcov.config import BillingSettings
from callcov.kit.time import utcnow
from callcov.models import Subscription, UsageRecord, UsageReport

MAX_ROUNDS = 5


@dataclass(frozen=True)
class Pending:
    report_id: uuid.UUID
    amount: int
    description: str
    snap: Snapshot


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: BillingSettings,
    user_id: uuid.UUID,
    period_start: datetime,
) -> None:
    for _ in range(MAX_ROUNDS):
        async with sessionmaker() as session:
            pending = await prepare(session, user_id, period_start)
            await session.commit()
        if pending is None:
            return
        item_id = None
        if pending.amount > 0:
            async with open_provider(settings) as provider:  # no transaction is open here
                item_id = await provider.report_usage(
                    pending.snap,
                    amount=pending.amount,
                    description=pending.description,
                    idempotency_key=f"callcov-usage-{pending.report_id}",
                )
        async with sessionmaker() as session:
            await confirm(session, pending.report_id, item_id)
            await session.commit()


def _pending(report: UsageReport, sub: Subscription) -> Pending:
    description = f"CallCov overage: {report.overage_minutes:.2f} minutes beyond the {sub.tier} plan"
    return Pending(report.id, report.amount, description, Snapshot.of(sub, ""))


async def prepare(session: AsyncSession, user_id: uuid.UUID, period_start: datetime) -> Pending | None:
    """A report to send: a pending one first (resent as is), else a new one for the period's
    unreported records. None when there is nothing left to report."""
    sub = await locked_subscription(session, user_id)
    if not sub.stripe_customer_id:
        return None
    pending = (
        await session.exec(
            select(UsageReport)
            .where(UsageReport.user_id == user_id, UsageReport.status == "pending")
            .order_by(col(UsageReport.created_at))
        )
    ).first()
    if pending is not None:
        return _pending(pending, sub)
    end = sub.current_period_end if sub.current_period_start <= period_start else sub.current_period_start
    records = (
        await session.exec(
            select(UsageRecord.id).where(
                UsageRecord.user_id == user_id,
                col(UsageRecord.reported_at).is_(None),
                col(UsageRecord.created_at) >= period_start,
                col(UsageRecord.created_at) < end,
            )
        )
    ).all()
    if not records:
        return None
    plan = plan_of(sub.tier)
    used = await period_usage(session, user_id, period_start, end)
    sent = (
        await session.exec(
            select(func.coalesce(func.sum(UsageReport.amount), 0)).where(
                UsageReport.user_id == user_id, UsageReport.period_start == period_start
            )
        )
    ).one()
    report = UsageReport(
        user_id=user_id,
        period_start=period_start,
        tier=sub.tier,
        overage_minutes=plan.overage_minutes(used.minutes),
        amount=max(0, plan.overage_cents(used.minutes) - int(sent)),
        record_ids=[str(record_id) for record_id in records],
    )
    session.add(report)
    await session.flush()
    return _pending(report, sub)


async def confirm(session: AsyncSession, report_id: uuid.UUID, item_id: str | None) -> None:
    report = await session.get(UsageReport, report_id, with_for_update=True)
    if report is None or report.status == "confirmed":
        return
    now = utcnow()
    report.status, report.confirmed_at, report.stripe_invoice_item_id = "confirmed", now, item_id
    session.add(report)
    ids = [uuid.UUID(value) for value in report.record_ids]
    await session.exec(
        update(UsageRecord)
        .where(col(UsageRecord.id).in_(ids), col(UsageRecord.reported_at).is_(None))
        .values(reported_at=now)
    )
