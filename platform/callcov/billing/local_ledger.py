"""The local ledger: the embedded provider. Plans change at once, prorated by the time left in the
period; every amount is written as a local invoice, so a self-hosted deployment keeps the same numbers
as Stripe would, with no Stripe account."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from callcov.billing.errors import PortalUnavailable
from callcov.billing.plans import plan_of
from callcov.billing.provider import Charge, Remote, Snapshot
from callcov.billing.repository import add_month, period_now
from callcov.kit.time import utcnow


def prorated(snap: Snapshot, old_tier: str, new_tier: str) -> Charge | None:
    """The difference of the two prices for the time left in the period (negative: a credit)."""
    now = utcnow()
    total = (snap.period_end - snap.period_start).total_seconds()
    left = max(0.0, (snap.period_end - now).total_seconds())
    fraction = Decimal(repr(left / total)) if total > 0 else Decimal(0)
    delta = plan_of(new_tier).price_cents - plan_of(old_tier).price_cents
    amount = int((delta * fraction).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if amount == 0:
        return None
    return Charge(amount, f"Proration: {old_tier} to {new_tier} for the rest of the period")


class LocalLedger:
    name: Literal["local", "stripe"] = "local"

    async def subscribe(self, snap: Snapshot, tier: str, payment_method: str | None) -> Remote:
        now = period_now()
        price = plan_of(tier).price_cents
        charge = Charge(price, f"{plan_of(tier).name} plan, first period") if price else None
        return Remote(tier, "active", now, add_month(now), False, charge=charge)

    async def change_tier(self, snap: Snapshot, tier: str) -> Remote:
        return Remote(
            tier,
            snap.status,
            snap.period_start,
            snap.period_end,
            False,
            charge=prorated(snap, snap.tier, tier),
        )

    async def cancel(self, snap: Snapshot, *, at_period_end: bool) -> Remote:
        if at_period_end:
            return Remote(snap.tier, snap.status, snap.period_start, snap.period_end, True)
        return Remote("free", "active", snap.period_start, snap.period_end, False, canceled=True)

    async def reactivate(self, snap: Snapshot) -> Remote:
        return Remote(snap.tier, snap.status, snap.period_start, snap.period_end, False)

    async def ensure_customer(self, snap: Snapshot) -> str:
        raise PortalUnavailable()

    async def portal_url(self, customer_id: str) -> str:
        raise PortalUnavailable()

    async def report_usage(
        self, snap: Snapshot, *, amount: int, description: str, idempotency_key: str
    ) -> str:
        raise NotImplementedError("the local ledger invoices overage at the period's end")

    async def invoice_pending(self, snap: Snapshot) -> str | None:
        return None  # the local ledger invoices as it goes

    async def aclose(self) -> None:
        return None
