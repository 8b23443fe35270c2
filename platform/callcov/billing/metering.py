"""Metering of submissions, inside ``create_analysis``'s transaction.

``check`` locks the account's subscription row (so the limit check and the usage insert of one
account are atomic: concurrent submissions queue on the lock), refuses with 402 what the plan does not
allow, and says which analysis level the plan gives. ``record`` writes the live-mode usage record and,
for Stripe overage, the job that reports it; on a plan with priority processing it moves the analysis
job ahead in the queue. Test mode: no limit, no record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.principal import Principal
from callcov.billing.errors import UsageLimitExceeded
from callcov.billing.plans import Level, plan_of
from callcov.billing.repository import locked_subscription, period_usage
from callcov.billing.subscription_state import roll_if_due
from callcov.kit.time import to_unix
from callcov.models import Analysis, Job, Subscription, UsageRecord
from callcov.worker import queue

REPORT_USAGE_JOB = "billing.report_usage"
# Priority processing (growth): the analysis job is queued as if submitted this much earlier, and the
# dispatcher claims due jobs oldest first.
PRIORITY_HEAD_START = timedelta(minutes=10)
# Stripe statuses in which live submissions are refused (see docs/api.md, "Billing").
UNPAID = frozenset({"past_due", "unpaid", "incomplete"})


@dataclass(frozen=True)
class Metered:
    level: Level
    minutes: float
    priority: bool = False
    report_overage: bool = False
    period_start: int = 0


def _refuse_unpaid(sub: Subscription) -> None:
    if sub.status in UNPAID:
        raise UsageLimitExceeded(
            f"The subscription is {sub.status}: its last payment failed, so live submissions are paused "
            "until the invoice is paid. Update the payment method in the customer portal.",
            details={"reason": "payment_failed", "status": sub.status, "tier": sub.tier},
        )


async def check(session: AsyncSession, principal: Principal, minutes: float) -> Metered:
    sub = await locked_subscription(session, principal.account_id)
    await roll_if_due(session, sub)
    plan = plan_of(sub.tier)
    if not principal.livemode:
        return Metered(level=plan.analysis_level, minutes=0.0, priority=plan.priority)
    _refuse_unpaid(sub)
    used = await period_usage(session, sub.user_id, sub.current_period_start, sub.current_period_end)
    if not plan.fits(used.minutes, minutes):
        raise UsageLimitExceeded(
            f"This {minutes:.2f}-minute call would exceed the {plan.minutes_included} minutes of the "
            f"{plan.name} plan ({used.minutes:.2f} used this period, which ends "
            f"{sub.current_period_end:%Y-%m-%d %H:%M} UTC). Upgrade the plan to continue.",
            details={
                "reason": "minutes_exhausted",
                "tier": plan.tier,
                "minutes_included": plan.minutes_included,
                "minutes_used": round(used.minutes, 4),
                "minutes_requested": round(minutes, 4),
                "current_period_end": to_unix(sub.current_period_end),
            },
        )
    overage = plan.overage_allowed and used.minutes + minutes > plan.minutes_included
    return Metered(
        level=plan.analysis_level,
        minutes=minutes,
        priority=plan.priority,
        report_overage=overage and sub.provider == "stripe" and sub.stripe_subscription_id is not None,
        period_start=to_unix(sub.current_period_start) or 0,
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
    if not metered.report_overage:
        return None
    return queue.enqueue(
        session,
        REPORT_USAGE_JOB,
        {"user_id": str(principal.account_id), "period_start": metered.period_start},
        max_attempts=max_attempts,
    )
