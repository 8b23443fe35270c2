"""The billing provider interface: Stripe, or the local ledger. A provider only talks to the outside
world; the service applies what it returns to the database, never while a transaction is open."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from callcov.config import BillingSettings
from callcov.models import Subscription


@dataclass(frozen=True)
class Snapshot:
    """The subscription as read before a provider call (the row itself stays in the database)."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    tier: str
    status: str
    period_start: datetime
    period_end: datetime
    cancel_at_period_end: bool
    customer_id: str | None
    subscription_id: str | None
    version: int  # microseconds of updated_at: the same state gives the same idempotency keys

    @classmethod
    def of(cls, row: Subscription, email: str) -> Snapshot:
        return cls(
            id=row.id,
            user_id=row.user_id,
            email=email,
            tier=row.tier,
            status=row.status,
            period_start=row.current_period_start,
            period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            customer_id=row.stripe_customer_id,
            subscription_id=row.stripe_subscription_id,
            version=int(row.updated_at.timestamp() * 1_000_000),
        )


@dataclass(frozen=True)
class Charge:
    """An amount the local ledger invoices for a change (proration, a new period)."""

    amount: int  # cents; negative is a credit
    description: str


@dataclass(frozen=True)
class Remote:
    """What the provider says the subscription is after a call."""

    tier: str
    status: str
    period_start: datetime
    period_end: datetime
    cancel_at_period_end: bool
    canceled: bool = False  # the paid plan ended now: the account is back on free
    customer_id: str | None = None
    subscription_id: str | None = None
    charge: Charge | None = None


class BillingProvider(Protocol):
    name: Literal["local", "stripe"]

    async def subscribe(self, snap: Snapshot, tier: str, payment_method: str | None) -> Remote: ...

    async def change_tier(self, snap: Snapshot, tier: str) -> Remote: ...

    async def cancel(self, snap: Snapshot, *, at_period_end: bool) -> Remote: ...

    async def reactivate(self, snap: Snapshot) -> Remote: ...

    async def ensure_customer(self, snap: Snapshot) -> str: ...

    async def portal_url(self, customer_id: str) -> str: ...

    async def report_usage(
        self, snap: Snapshot, *, amount: int, description: str, idempotency_key: str
    ) -> str: ...

    async def invoice_pending(self, snap: Snapshot) -> str | None: ...

    async def aclose(self) -> None: ...


@asynccontextmanager
async def open_provider(settings: BillingSettings) -> AsyncIterator[BillingProvider]:
    """The configured provider for one operation (Stripe when a secret key is set)."""
    provider: BillingProvider
    if settings.stripe_secret_key:
        from callcov.billing.stripe_provider import StripeProvider

        provider = StripeProvider(settings)
    else:
        from callcov.billing.local_ledger import LocalLedger

        provider = LocalLedger()
    try:
        yield provider
    finally:
        await provider.aclose()
