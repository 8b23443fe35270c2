"""Metering of submissions, inside ``create_analysis``'s transaction.

``check`` locks the account's subscription row (so the limit check and the usage insert of one
account are atomic: concurrent submissions queue on the lock), refuses with 402 what the plan does not
allow (included minutes of a plan without overage, the overage cap, an unpaid subscription), and says
which analysis level the plan gives. ``record`` writes the live-mode usage record and, for Stripe
overage, the job that reports it; on a plan with priority processing it moves the analysis job ahead
in the queue. Test mode records nothing and has its own quota of minutes per period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.principal import Principal
from callcov.billing import usage_reports
from callcov.billing.errors import UsageLimitExceeded
from callcov.billing.ledger import PeriodOverage, period_overage
from callcov.billing.plans import Level, plan_of
from callcov.billing.repository import locked_subscription
from callcov.billing.subscription_state import roll_if_due
from callcov.billing.usage_reports import REPORT_USAGE_JOB
from callcov.config import BillingSettings
from callcov.kit.time import to_unix
from callcov.models import Analysis, Job, Rescore, Subscription, UsageRecord

__all__ = [
    "REPORT_USAGE_JOB",
    "Metered",
    "check",
    "check_rescore",
    "overage_cap",
    "record",
    "record_retranscription",
]

# Priority processing (growth): the analysis job is queued as if submitted this much earlier, and the
# dispatcher claims due jobs oldest first.
PRIORITY_HEAD_START = timedelta(minutes=10)
# Stripe statuses in which live submissions are refused (see docs/api.md, "Billing").
UNPAID = frozenset({"past_due", "unpaid", "incomplete"})


@dataclass(frozen=True)
class Metered:
    level: Level
    minutes: float
    tier: str = "free"
    priority: bool = False
    report_overage: bool = False
    period_start: datetime | None = None


def _refuse_unpaid(sub: Subscription) -> None:
    if sub.status in UNPAID:
        raise UsageLimitExceeded(
            f"The subscription is {sub.status}: its last payment failed, so live submissions are paused "
            "until the invoice is paid. Update the payment method in the customer portal.",
            details={"reason": "payment_failed", "status": sub.status, "tier": sub.tier},
        )


def overage_cap(sub: Subscription, settings: BillingSettings) -> int | None:
    """The overage minutes the account may reach this period: its own cap, else its plan's default;
    None on a plan without overage."""
    if not plan_of(sub.tier).overage_allowed:
        return None
    if sub.overage_cap_minutes is not None:
        return sub.overage_cap_minutes
    return settings.overage_cap_minutes.get(sub.tier)


async def minutes_in_test_mode(session: AsyncSession, sub: Subscription) -> float:
    """Test-mode minutes of the period: test analyses are not metered, so they are summed from the
    analyses themselves. Every submission counts, failed ones too: the quota bounds the work test
    mode can cause, and test mode is never billed, so there is nothing to refund."""
    total = (
        await session.exec(
            select(func.coalesce(func.sum(Analysis.duration_ms), 0)).where(
                Analysis.user_id == sub.user_id,
                col(Analysis.livemode).is_(False),
                col(Analysis.created_at) >= sub.current_period_start,
                col(Analysis.created_at) < sub.current_period_end,
            )
        )
    ).one()
    retranscribed = (
        await session.exec(
            select(func.coalesce(func.sum(Rescore.minutes), 0)).where(
                Rescore.user_id == sub.user_id,
                col(Rescore.livemode).is_(False),
                col(Rescore.created_at) >= sub.current_period_start,
                col(Rescore.created_at) < sub.current_period_end,
            )
        )
    ).one()
    return int(total) / 60000 + float(retranscribed)


async def _check_test_quota(
    session: AsyncSession, sub: Subscription, minutes: float, settings: BillingSettings
) -> None:
    limit = settings.test_minutes_per_period
    used = await minutes_in_test_mode(session, sub)
    if used + minutes > limit + 1e-9:
        raise UsageLimitExceeded(
            f"This {minutes:.2f}-minute call would exceed the {limit} test-mode minutes of this period "
            f"({used:.2f} used; the period ends {sub.current_period_end:%Y-%m-%d %H:%M} UTC). Test mode "
            "is for integration: use a live key for production traffic.",
            details={
                "reason": "test_minutes_exhausted",
                "test_minutes_limit": limit,
                "test_minutes_used": round(used, 4),
                "minutes_requested": round(minutes, 4),
                "current_period_end": to_unix(sub.current_period_end),
            },
        )


def _check_live(sub: Subscription, overage: PeriodOverage, minutes: float, cap: int | None) -> None:
    plan = plan_of(sub.tier)
    if not plan.fits(overage.counted, minutes):
        raise UsageLimitExceeded(
            f"This {minutes:.2f}-minute call would exceed the {plan.minutes_included} minutes of the "
            f"{plan.name} plan ({overage.counted:.2f} used this period, which ends "
            f"{sub.current_period_end:%Y-%m-%d %H:%M} UTC). Upgrade the plan to continue.",
            details={
                "reason": "minutes_exhausted",
                "tier": plan.tier,
                "minutes_included": plan.minutes_included,
                "minutes_used": round(overage.counted, 4),
                "minutes_requested": round(minutes, 4),
                "current_period_end": to_unix(sub.current_period_end),
            },
        )
    after = overage.settled_minutes + plan.overage_minutes(overage.counted + minutes)
    if cap is not None and after > cap + 1e-9:
        raise UsageLimitExceeded(
            f"This {minutes:.2f}-minute call would take the overage of this period past the account's "
            f"cap of {cap} minutes ({overage.minutes:.2f} used). Contact support to raise the cap.",
            details={
                "reason": "overage_cap_reached",
                "tier": plan.tier,
                "overage_cap_minutes": cap,
                "overage_minutes": round(overage.minutes, 4),
                "minutes_requested": round(minutes, 4),
                "current_period_end": to_unix(sub.current_period_end),
            },
        )


async def check(
    session: AsyncSession, principal: Principal, minutes: float, settings: BillingSettings
) -> Metered:
    sub = await locked_subscription(session, principal.account_id)
    await roll_if_due(session, sub)
    plan = plan_of(sub.tier)
    if not principal.livemode:
        await _check_test_quota(session, sub, minutes, settings)
        return Metered(level=plan.analysis_level, minutes=0.0, tier=plan.tier, priority=plan.priority)
    _refuse_unpaid(sub)
    overage = await period_overage(
        session, sub.user_id, sub.current_period_start, sub.current_period_end, sub.tier
    )
    _check_live(sub, overage, minutes, overage_cap(sub, settings))
    over = plan.overage_allowed and overage.counted + minutes > plan.minutes_included
    return Metered(
        level=plan.analysis_level,
        minutes=minutes,
        tier=plan.tier,
        priority=plan.priority,
        report_overage=over and sub.provider == "stripe" and sub.stripe_subscription_id is not None,
        period_start=sub.current_period_start,
    )


def record(
    session: AsyncSession,
    principal: Principal,
    analysis: Analysis,
    analysis_job: Job,
    metered: Metered,
    *,
    max_attempts: int,
) -> Job | None:
    """Returns the usage-report job, if one was enqueued (the caller wakes its runner after commit)."""
    if metered.priority:
        analysis_job.run_after -= PRIORITY_HEAD_START
    if not principal.livemode:
        return None
    session.add(UsageRecord(user_id=principal.account_id, analysis_id=analysis.id, minutes=metered.minutes))
    if not metered.report_overage or metered.period_start is None:
        return None
    return usage_reports.queue_report(
        session, principal.account_id, metered.period_start, tier=metered.tier, max_attempts=max_attempts
    )


async def check_rescore(
    session: AsyncSession, principal: Principal, minutes: float, settings: BillingSettings
) -> Metered:
    """A re-scoring (docs/api.md, "Re-scoring"): one that transcribes again (``minutes`` > 0) is
    checked like a submission of that many minutes; one that scores the stored transcript costs no
    minutes, but a live one is refused while the subscription is unpaid. Either way the analysis level
    is the plan's now."""
    if minutes > 0:
        return await check(session, principal, minutes, settings)
    sub = await locked_subscription(session, principal.account_id)
    await roll_if_due(session, sub)
    plan = plan_of(sub.tier)
    if principal.livemode:
        _refuse_unpaid(sub)
    return Metered(level=plan.analysis_level, minutes=0.0, tier=plan.tier)


def record_retranscription(
    session: AsyncSession, principal: Principal, rescore: Rescore, metered: Metered, *, max_attempts: int
) -> Job | None:
    """The live-mode usage record of a retranscription (its own, beside the submission's)."""
    if not principal.livemode or metered.minutes <= 0:
        return None
    session.add(
        UsageRecord(
            user_id=principal.account_id,
            analysis_id=rescore.analysis_id,
            rescore_id=rescore.id,
            minutes=metered.minutes,
        )
    )
    if not metered.report_overage or metered.period_start is None:
        return None
    return usage_reports.queue_report(
        session, principal.account_id, metered.period_start, tier=metered.tier, max_attempts=max_attempts
    )
