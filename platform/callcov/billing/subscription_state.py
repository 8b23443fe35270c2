"""What changes a subscription row: a provider's answer, and the roll-over to the next period (which
resets the included minutes; the local ledger invoices the new period and the closed one's overage)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing.plans import plan_of
from callcov.billing.provider import Remote
from callcov.billing.repository import add_month, period_usage
from callcov.kit.time import utcnow
from callcov.models import Invoice, Subscription


def apply_remote(session: AsyncSession, sub: Subscription, remote: Remote, provider: str) -> None:
    now = utcnow()
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


def add_local_invoice(session: AsyncSession, sub: Subscription, amount: int, description: str) -> None:
    session.add(
        Invoice(
            user_id=sub.user_id,
            provider="local",
            status="open",
            tier=sub.tier,
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
        sub.current_period_start, sub.current_period_end = closed_end, add_month(closed_end)
        if sub.provider == "local":
            await _invoice_period(session, sub, closed_tier, closed_start, closed_end)
        rolled = True
    if rolled:
        sub.updated_at = now
        session.add(sub)
    return rolled


async def _invoice_period(
    session: AsyncSession, sub: Subscription, closed_tier: str, closed_start: datetime, closed_end: datetime
) -> None:
    closed_plan, plan = plan_of(closed_tier), plan_of(sub.tier)
    used = await period_usage(session, sub.user_id, closed_start, closed_end)
    overage = closed_plan.overage_cents(used.minutes)
    amount = plan.price_cents + overage
    if amount == 0:
        return
    parts = [f"{plan.name} plan"] if plan.price_cents else []
    if overage:
        parts.append(
            f"{closed_plan.overage_minutes(used.minutes):.2f} overage minutes of the previous period"
        )
    add_local_invoice(session, sub, amount, "; ".join(parts))
