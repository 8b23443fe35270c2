"""Refunds: an analysis that fails for good through CallCov's fault (out of attempts, its recording
lost, its rubric gone) is not billed; one the recording made fail is (docs/api.md, "Refunds").

The caller (``AnalysisPipeline.fail``) voids its usage record in the transaction that marks it
``failed`` (that update applies once, to a ``processing`` row, and the void only to a record not yet
voided: exactly once, and a crash before the commit leaves both undone for the retried job). Its minutes
stop counting at once. If they were already billed, the difference is credited: the local ledger
writes a credit invoice for a period (or plan segment) it has already invoiced; with Stripe a usage
report job sends the negative difference as an invoice item (a credit on the next invoice)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing import usage_reports
from callcov.billing.ledger import period_overage, settle_local
from callcov.billing.repository import add_month, locked_subscription
from callcov.billing.subscription_state import add_local_invoice
from callcov.kit.time import utcnow
from callcov.models import Job, Subscription, UsageRecord, UsageReport


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    tier: str  # the plan at its end


async def period_of(session: AsyncSession, sub: Subscription, when: datetime) -> Period | None:
    """The billing period that contains ``when``: the current one, or an earlier one known from what
    was billed for it (a period that billed nothing has nothing to credit)."""
    if when >= sub.current_period_start:
        return Period(sub.current_period_start, sub.current_period_end, sub.tier)
    report = (
        await session.exec(
            select(UsageReport)
            .where(UsageReport.user_id == sub.user_id, col(UsageReport.period_start) <= when)
            .order_by(col(UsageReport.period_start).desc())
        )
    ).first()
    if report is None:
        return None
    end = min(add_month(report.period_start), sub.current_period_start)
    return Period(report.period_start, end, report.tier)


async def refund_analysis(
    session: AsyncSession, analysis_id: uuid.UUID, *, max_attempts: int, rescore_id: uuid.UUID | None = None
) -> Job | None:
    """Void the analysis' usage (live mode only; test mode records none), or that of one of its
    retranscriptions (``rescore_id``), and credit what it cost. Returns the Stripe usage-report job,
    if one was queued. The caller commits."""
    now = utcnow()
    which = (
        col(UsageRecord.rescore_id).is_(None)
        if rescore_id is None
        else col(UsageRecord.rescore_id) == rescore_id
    )
    voided = (
        await session.exec(
            update(UsageRecord)
            .where(col(UsageRecord.analysis_id) == analysis_id, which, col(UsageRecord.voided_at).is_(None))
            .values(voided_at=now)
            .returning(col(UsageRecord.user_id), col(UsageRecord.created_at))
        )
    ).first()
    if voided is None:
        return None
    user_id, created = voided
    sub = await locked_subscription(session, user_id)
    period = await period_of(session, sub, created)
    if period is None:
        return None
    if sub.provider == "local":
        overage = await period_overage(session, user_id, period.start, period.end, period.tier)
        ended = period.start != sub.current_period_start
        amount = await settle_local(session, user_id, overage, now, ended=ended)
        if amount:
            add_local_invoice(session, sub, amount, f"Refund: overage of failed analysis {analysis_id}")
        return None
    if not sub.stripe_customer_id:
        return None
    return usage_reports.queue_report(
        session,
        user_id,
        period.start,
        tier=period.tier,
        final=sub.stripe_subscription_id is None,
        max_attempts=max_attempts,
    )
