"""Reporting overage to Stripe, as invoice items of the customer (its next invoice, or a final one).

Outbox in two steps: a ``UsageReport`` row (amount, the records it covers) is committed first, then
sent with the idempotency key ``callcov-usage-<report id>``, then confirmed, which sets the records'
``reported_at``. A failure leaves the report pending and the job is retried with backoff; a retry (or
the next job of the account) resends the same report under the same key, so Stripe counts it once and
no usage record is lost. Amounts are cumulative per period: the period's overage cost in whole cents
(rounded half up, segment by segment: ``ledger.py``) minus what earlier reports of the period already
sent, so rounding never drifts, and a refund is sent as a negative item (a credit)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing.ledger import billed, period_overage
from callcov.billing.provider import BillingProvider, Snapshot, open_provider
from callcov.billing.repository import locked_subscription
from callcov.config import BillingSettings
from callcov.kit.time import to_unix, utcnow
from callcov.models import Job, Subscription, UsageRecord, UsageReport
from callcov.worker import queue

REPORT_USAGE_JOB = "billing.report_usage"
MAX_ROUNDS = 5


@dataclass(frozen=True)
class Pending:
    report_id: uuid.UUID
    amount: int
    description: str
    snap: Snapshot


def queue_report(
    session: AsyncSession,
    user_id: uuid.UUID,
    period_start: datetime,
    *,
    tier: str,
    final: bool = False,
    max_attempts: int,
) -> Job:
    """Queue a report of the period (``tier``: the plan at its end, should it roll over meanwhile).
    ``final``: the Stripe subscription has ended, so the customer's pending overage is invoiced."""
    payload = {
        "user_id": str(user_id),
        "period_start": to_unix(period_start),
        "tier": tier,
        "final": final,
    }
    return queue.enqueue(session, REPORT_USAGE_JOB, payload, max_attempts=max_attempts)


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: BillingSettings,
    user_id: uuid.UUID,
    period_start: datetime,
    *,
    tier: str | None = None,
    final: bool = False,
) -> None:
    async with sessionmaker() as session, open_provider(settings) as provider:
        alone = await flush(session, provider, user_id, period_start, tier)
        if final or alone:
            await invoice_pending(session, provider, user_id)


async def flush(
    session: AsyncSession,
    provider: BillingProvider,
    user_id: uuid.UUID,
    period_start: datetime,
    tier: str | None = None,
) -> bool:
    """Send what the period's overage costs beyond what was sent. Each report is committed before
    Stripe is called (no transaction is open meanwhile) and confirmed after. Returns whether an item
    was sent while the customer had no subscription (it then needs an invoice of its own)."""
    alone = False
    for _ in range(MAX_ROUNDS):
        pending = await prepare(session, user_id, period_start, tier)
        await session.commit()
        if pending is None:
            break
        item_id = None
        if pending.amount != 0:
            item_id = await provider.report_usage(
                pending.snap,
                amount=pending.amount,
                description=pending.description,
                idempotency_key=f"callcov-usage-{pending.report_id}",
            )
            alone = alone or pending.snap.subscription_id is None
        await confirm(session, pending.report_id, item_id)
        await session.commit()
    return alone


async def invoice_pending(session: AsyncSession, provider: BillingProvider, user_id: uuid.UUID) -> None:
    """After the Stripe subscription ended: invoice the customer's pending overage items now (an
    active subscription would put them on its next invoice)."""
    sub = await locked_subscription(session, user_id)
    snap = Snapshot.of(sub, "")
    await session.commit()
    if snap.customer_id and not snap.subscription_id:
        await provider.invoice_pending(snap)


def _pending(report: UsageReport, sub: Subscription) -> Pending:
    if report.amount < 0:
        description = (
            f"CallCov credit: minutes of failed analyses refunded ({report.overage_minutes:.2f} overage "
            "minutes remain this period)"
        )
    else:
        description = f"CallCov overage: {report.overage_minutes:.2f} minutes beyond the {report.tier} plan"
    return Pending(report.id, report.amount, description, Snapshot.of(sub, ""))


async def prepare(
    session: AsyncSession, user_id: uuid.UUID, period_start: datetime, tier: str | None = None
) -> Pending | None:
    """A report to send: a pending one first (resent as is), else a new one for the difference between
    the period's overage cost (``ledger.py``) and what earlier reports sent, negative after a refund.
    None when there is nothing left to report."""
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
    current = sub.current_period_start <= period_start
    end = sub.current_period_end if current else sub.current_period_start
    overage = await period_overage(
        session, user_id, period_start, end, sub.tier if current else (tier or sub.tier)
    )
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
    amount = overage.cents - await billed(session, user_id, period_start)
    if not records and amount == 0:
        return None
    report = UsageReport(
        user_id=user_id,
        period_start=period_start,
        tier=overage.tier,
        overage_minutes=overage.minutes,
        amount=amount,
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
