"""Plan changes around a provider call. A change reads and checks the subscription in one short
transaction, ends it (the one place billing commits inside a request: no database lock or open
transaction is held while Stripe is called), calls the provider, then applies the provider's answer
under the row lock in the request's second transaction, which the unit of work commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing import usage_reports
from callcov.billing.errors import InvalidTier, SubscriptionConflict
from callcov.billing.provider import BillingProvider, Remote, Snapshot, open_provider
from callcov.billing.repository import locked_subscription
from callcov.billing.service import current
from callcov.billing.subscription_state import apply_remote
from callcov.config import BillingSettings
from callcov.kit.time import utcnow
from callcov.models import Subscription, User

ProviderCall = Callable[[BillingProvider, Snapshot], Awaitable[Remote]]


async def _change(
    session: AsyncSession,
    settings: BillingSettings,
    user: User,
    check: Callable[[Subscription], None],
    call: ProviderCall,
    *,
    flush_usage: bool = False,
) -> Subscription:
    sub = await current(session, user.id)
    check(sub)
    snap = Snapshot.of(sub, user.email)
    await session.commit()  # end the transaction: no lock is held while the provider is called
    async with open_provider(settings) as provider:
        if flush_usage and snap.subscription_id:
            # The overage so far is sent before the subscription ends, so Stripe's final invoice
            # carries it (usage_reports commits around each call: still no transaction open).
            await usage_reports.flush(session, provider, user.id, snap.period_start, snap.tier)
        remote = await call(provider, snap)
        name = provider.name
    sub = await locked_subscription(session, user.id)
    await apply_remote(session, sub, remote, name, max_attempts=settings.job_max_attempts)
    await session.flush()
    return sub


def _must_be_paid(sub: Subscription) -> None:
    if sub.tier == "free":
        raise SubscriptionConflict("There is no paid subscription: the account is on the free plan")


async def subscribe(
    session: AsyncSession, settings: BillingSettings, user: User, tier: str, payment_method: str | None
) -> Subscription:
    if tier == "free":
        sub = await current(session, user.id)
        if sub.tier != "free":
            raise SubscriptionConflict(
                f"The account is on {sub.tier}: use /billing/subscription/update or /cancel to change it"
            )
        return sub

    def check(sub: Subscription) -> None:
        if sub.tier != "free":
            raise SubscriptionConflict(
                f"The account already has a {sub.tier} subscription: use /billing/subscription/update"
            )

    return await _change(
        session, settings, user, check, lambda p, snap: p.subscribe(snap, tier, payment_method)
    )


async def update(session: AsyncSession, settings: BillingSettings, user: User, tier: str) -> Subscription:
    """Upgrade or downgrade. From free it starts a subscription; to free it cancels at period end."""
    sub = await current(session, user.id)
    if tier == sub.tier:
        if sub.cancel_at_period_end:
            return await reactivate(session, settings, user)
        raise InvalidTier(f"The account is already on the {tier} plan")
    if sub.tier == "free":
        return await subscribe(session, settings, user, tier, None)
    if tier == "free":
        return await cancel(session, settings, user, at_period_end=True)
    return await _change(session, settings, user, _must_be_paid, lambda p, snap: p.change_tier(snap, tier))


async def cancel(
    session: AsyncSession, settings: BillingSettings, user: User, *, at_period_end: bool
) -> Subscription:
    """At the period's end, or now: then the overage used so far is billed at the plan in force
    (``subscription_state.plan_changed``; with Stripe, reported before the cancellation and invoiced
    by Stripe's final invoice)."""
    return await _change(
        session,
        settings,
        user,
        _must_be_paid,
        lambda p, snap: p.cancel(snap, at_period_end=at_period_end),
        flush_usage=not at_period_end,
    )


async def reactivate(session: AsyncSession, settings: BillingSettings, user: User) -> Subscription:
    def check(sub: Subscription) -> None:
        _must_be_paid(sub)
        if not sub.cancel_at_period_end:
            raise SubscriptionConflict("The subscription has no pending cancellation")

    return await _change(session, settings, user, check, lambda p, snap: p.reactivate(snap))


async def portal_url(session: AsyncSession, settings: BillingSettings, user: User) -> str:
    sub = await current(session, user.id)
    snap = Snapshot.of(sub, user.email)
    await session.commit()
    async with open_provider(settings) as provider:
        customer_id = await provider.ensure_customer(snap)
        url = await provider.portal_url(customer_id)
    if customer_id != snap.customer_id:
        sub = await locked_subscription(session, user.id)
        sub.stripe_customer_id, sub.updated_at = customer_id, utcnow()
        session.add(sub)
    return url
