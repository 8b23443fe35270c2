"""What changes a subscription row: a provider's answer (a change of plan cuts the period, see
``ledger.py``), and the roll-over to the next period (which resets the included minutes; the local
ledger invoices the new period and the closed one's overage)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing import usage_reports
from callcov.billing.ledger import period_overage, record_change, settle_local
from callcov.billing.plans import plan_of
from callcov.billing.provider import Remote
from callcov.billing.repository import add_month
from callcov.kit.time import utcnow
from callcov.models import Invoice, Subscription


async def apply_remote(
    session: AsyncSession, sub: Subscription, remote: Remote, provider: str, *, max_attempts: int
) -> None:
    now = utcnow()
    tier_before, period_before = sub.tier, sub.current_period_start
    sub.tier = remote.tier
    sub.status = remote.status
    sub.current_period_start = remote.period_start or sub.current_period_start
    sub.current_period_end = remote.period_end or sub.current_period_end
    sub.cancel_at_period_end = remote.cancel_at_period_end
    sub.provider = provider
    if remote.customer_id:
        sub.stripe_customer_id = remote.customer_id
    sub.stripe_subscription_id = remote.subscription_id
    if remote.canceled:
        sub.canceled_at = now
    sub.updated_at = now
    session.add(sub)
    if remote.charge is not None and provider == "local":
        add_local_invoice(session, sub, remote.charge.amount, remote.charge.description)
    if sub.tier != tier_before:
        await plan_changed(session, sub, tier_before, period_before, now, max_attempts=max_attempts)


async def plan_changed(
    session: AsyncSession,
    sub: Subscription,
    tier_before: str,
    period_before: datetime,
    now: datetime,
    *,
    max_attempts: int,
) -> None:
    """Record a change of plan (``sub`` already carries the new one). In the middle of a period, the
    overage of the minutes used so far is settled at the plan that was in force: the local ledger
    invoices it now; with Stripe a usage report is queued (and, when the Stripe subscription has
    ended, the final invoice of the customer's pending overage)."""
    same_period = sub.current_period_start == period_before
    at = now if same_period else sub.current_period_start
    record_change(session, sub.user_id, at, tier_before, sub.tier)
    # Only a plan with overage has any to settle (from free, a paid plan starts its own period).
    mid_period = same_period and sub.current_period_start < at < sub.current_period_end
    mid_period = mid_period and plan_of(tier_before).overage_allowed
    if sub.provider == "local":
        if mid_period:
            await _invoice_settled(session, sub, tier_before, now)
        return
    ended = sub.stripe_subscription_id is None
    if sub.stripe_customer_id and (mid_period or ended):
        usage_reports.queue_report(
            session,
            sub.user_id,
            sub.current_period_start,
            tier=sub.tier,
            final=ended,
            max_attempts=max_attempts,
        )


async def _invoice_settled(session: AsyncSession, sub: Subscription, tier_before: str, now: datetime) -> None:
    await session.flush()  # the change just recorded cuts the period
    overage = await period_overage(
        session, sub.user_id, sub.current_period_start, sub.current_period_end, sub.tier
    )
    amount = await settle_local(session, sub.user_id, overage, now, ended=False)
    if amount:
        old = plan_of(tier_before)
        description = (
            f"Overage: {overage.settled_minutes:.2f} minutes beyond the {old.name} plan's included "
            f"minutes this period, billed at the change to {plan_of(sub.tier).name}"
        )
        add_local_invoice(session, sub, amount, description, tier=tier_before)


def add_local_invoice(
    session: AsyncSession, sub: Subscription, amount: int, description: str, *, tier: str | None = None
) -> None:
    session.add(
        Invoice(
            user_id=sub.user_id,
            provider="local",
            status="open",
            tier=tier or sub.tier,
            amount_due=amount,
            description=description[:500],
            period_start=sub.current_period_start,
            period_end=sub.current_period_end,
        )
    )


async def roll_if_due(session: AsyncSession, sub: Subscription, now: datetime | None = None) -> bool:
    """Move a subscription whose period has ended to the period that contains ``now``. A pending
    cancellation takes effect (back to free; for a Stripe subscription, Stripe's deletion event does
    that). The local ledger invoices each new paid period plus the overage of the period that closed;
    with Stripe, Stripe invoices and its events set the period."""
    now = now or utcnow()
    rolled = False
    while now >= sub.current_period_end:
        closed_start, closed_end, closed_tier = sub.current_period_start, sub.current_period_end, sub.tier
        # A Stripe subscription ends when Stripe says so (customer.subscription.deleted).
        if sub.cancel_at_period_end and sub.stripe_subscription_id is None:
            sub.tier, sub.cancel_at_period_end, sub.canceled_at = "free", False, closed_end
            record_change(session, sub.user_id, closed_end, closed_tier, "free")
        sub.current_period_start, sub.current_period_end = closed_end, add_month(closed_end)
        if sub.provider == "local":
            await _invoice_period(session, sub, closed_tier, closed_start, closed_end, now)
        rolled = True
    if rolled:
        sub.updated_at = now
        session.add(sub)
    return rolled


async def _invoice_period(
    session: AsyncSession,
    sub: Subscription,
    closed_tier: str,
    closed_start: datetime,
    closed_end: datetime,
    now: datetime,
) -> None:
    """The new period's price, plus what the closed period's overage costs beyond what was billed
    for it (at a plan change, or a credit for a refund)."""
    plan = plan_of(sub.tier)
    overage = await period_overage(session, sub.user_id, closed_start, closed_end, closed_tier)
    extra = await settle_local(session, sub.user_id, overage, now, ended=True)
    amount = plan.price_cents + extra
    if amount == 0:
        return
    parts = [f"{plan.name} plan"] if plan.price_cents else []
    if extra:
        parts.append(f"{overage.minutes:.2f} overage minutes of the previous period")
    add_local_invoice(session, sub, amount, "; ".join(parts))
