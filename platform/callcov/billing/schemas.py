"""Billing objects as the API returns them (CONTRACT.md §2, §5): Unix timestamps, `object`, `livemode`."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from callcov.billing.plans import PLANS, Plan, cents_to_usd
from callcov.billing.service import BillingView
from callcov.kit.time import to_unix
from callcov.models import Invoice, UsageRecord

TierName = Literal["free", "starter", "growth"]


class TierInfo(BaseModel):
    tier: str
    name: str
    price_monthly: int
    minutes_included: int
    overage_allowed: bool
    overage_rate: float | None = Field(description="USD per minute; null when overage is not allowed")
    analysis_level: str
    priority_processing: bool
    features: list[str]

    @classmethod
    def of(cls, plan: Plan) -> TierInfo:
        return cls(
            tier=plan.tier,
            name=plan.name,
            price_monthly=plan.price_monthly,
            minutes_included=plan.minutes_included,
            overage_allowed=plan.overage_allowed,
            overage_rate=plan.overage_rate,
            analysis_level=plan.analysis_level,
            priority_processing=plan.priority,
            features=list(plan.features),
        )


class TierList(BaseModel):
    object: Literal["list"] = "list"
    tiers: list[TierInfo]

    @classmethod
    def all(cls) -> TierList:
        return cls(tiers=[TierInfo.of(plan) for plan in PLANS.values()])


class SubscriptionPublic(BaseModel):
    id: uuid.UUID
    object: Literal["subscription"] = "subscription"
    created: int
    livemode: bool
    user_id: uuid.UUID
    tier: str
    status: str
    provider: str
    minutes_included: int
    minutes_used: float
    minutes_remaining: float
    overage_minutes: float
    overage_cap_minutes: int | None = Field(
        description="Overage minutes the period may reach (402 past it); null on a plan without overage"
    )
    current_period_start: int
    current_period_end: int
    cancel_at_period_end: bool
    canceled_at: int | None
    tier_info: TierInfo

    @classmethod
    def of(cls, view: BillingView, *, livemode: bool) -> SubscriptionPublic:
        sub, usage = view.sub, view.overage
        plan = PLANS[sub.tier]
        used = round(usage.used, 4)
        return cls(
            id=sub.id,
            created=to_unix(sub.created_at) or 0,
            livemode=livemode,
            user_id=sub.user_id,
            tier=sub.tier,
            status=sub.status,
            provider=sub.provider,
            minutes_included=plan.minutes_included,
            minutes_used=used,
            minutes_remaining=round(max(0.0, plan.minutes_included - usage.counted), 4),
            overage_minutes=round(usage.minutes, 4),
            overage_cap_minutes=view.overage_cap_minutes,
            current_period_start=to_unix(sub.current_period_start) or 0,
            current_period_end=to_unix(sub.current_period_end) or 0,
            cancel_at_period_end=sub.cancel_at_period_end,
            canceled_at=to_unix(sub.canceled_at),
            tier_info=TierInfo.of(plan),
        )


class SubscriptionCreate(BaseModel):
    tier: TierName
    payment_method: str | None = Field(
        default=None, max_length=255, description="A Stripe PaymentMethod id (pm_…); not needed for free"
    )


class SubscriptionUpdate(BaseModel):
    tier: TierName


class SubscriptionCancel(BaseModel):
    at_period_end: StrictBool = True  # strict: "false" or 0 is a 422, as the schema says


class UsageSummary(BaseModel):
    total_minutes_used: float
    analysis_count: int
    minutes_remaining: float
    usage_percentage: float


class SubscriptionSummary(BaseModel):
    object: Literal["subscription_summary"] = "subscription_summary"
    livemode: bool
    subscription: SubscriptionPublic
    usage: UsageSummary
    estimated_overage_cost: float

    @classmethod
    def of(cls, view: BillingView, *, livemode: bool) -> SubscriptionSummary:
        public = SubscriptionPublic.of(view, livemode=livemode)
        usage = view.overage
        plan = PLANS[view.sub.tier]
        return cls(
            livemode=livemode,
            subscription=public,
            usage=UsageSummary(
                total_minutes_used=public.minutes_used,
                analysis_count=usage.count,
                minutes_remaining=public.minutes_remaining,
                usage_percentage=round(100 * usage.counted / plan.minutes_included, 2),
            ),
            estimated_overage_cost=cents_to_usd(usage.cents),
        )


class UsagePeriod(BaseModel):
    start: int
    end: int
    billing_cycle: Literal["monthly"] = "monthly"


class UsageMetrics(BaseModel):
    minutes_analyzed: float
    analysis_count: int
    overage_minutes: float


class UsageLimits(BaseModel):
    minutes_limit: int
    overage_allowed: bool
    overage_rate: float | None
    overage_cap_minutes: int | None = None


class UsageCosts(BaseModel):
    base: float
    minutes_cost: float = Field(description="Overage so far this period")
    total: float
    currency: Literal["USD"] = "USD"


class Usage(BaseModel):
    object: Literal["usage"] = "usage"
    livemode: bool
    tier: str
    period: UsagePeriod
    metrics: UsageMetrics
    limits: UsageLimits
    costs: UsageCosts

    @classmethod
    def of(cls, view: BillingView, *, livemode: bool) -> Usage:
        sub, usage = view.sub, view.overage
        plan = PLANS[sub.tier]
        overage_cents = usage.cents if livemode else 0
        base_cents = plan.price_cents if livemode else 0
        return cls(
            livemode=livemode,
            tier=sub.tier,
            period=UsagePeriod(
                start=to_unix(sub.current_period_start) or 0, end=to_unix(sub.current_period_end) or 0
            ),
            metrics=UsageMetrics(
                minutes_analyzed=round(usage.used, 4),
                analysis_count=usage.count,
                overage_minutes=round(usage.minutes, 4),
            ),
            limits=UsageLimits(
                minutes_limit=plan.minutes_included,
                overage_allowed=plan.overage_allowed,
                overage_rate=plan.overage_rate,
                overage_cap_minutes=view.overage_cap_minutes,
            ),
            costs=UsageCosts(
                base=cents_to_usd(base_cents),
                minutes_cost=cents_to_usd(overage_cents),
                total=cents_to_usd(base_cents + overage_cents),
            ),
        )


class HistoryItem(BaseModel):
    """A usage record (`object: "usage_record"`) or an invoice (`object: "invoice"`)."""

    id: uuid.UUID
    object: Literal["usage_record", "invoice"]
    created: int
    livemode: bool = True
    # usage records
    analysis_id: uuid.UUID | None = None
    minutes: float | None = None
    reported_at: int | None = None
    refunded_at: int | None = Field(default=None, description="Set when its analysis failed: not billed")
    # invoices (amounts in cents, as Stripe gives them)
    status: str | None = None
    tier: str | None = None
    amount_due: int | None = None
    amount_paid: int | None = None
    currency: str | None = None
    description: str | None = None
    hosted_invoice_url: str | None = None
    period_start: int | None = None
    period_end: int | None = None
    stripe_invoice_id: str | None = None

    @classmethod
    def of_record(cls, row: UsageRecord) -> HistoryItem:
        return cls(
            id=row.id,
            object="usage_record",
            created=to_unix(row.created_at) or 0,
            analysis_id=row.analysis_id,
            minutes=round(row.minutes, 4),
            reported_at=to_unix(row.reported_at),
            refunded_at=to_unix(row.voided_at),
        )

    @classmethod
    def of_invoice(cls, row: Invoice) -> HistoryItem:
        return cls(
            id=row.id,
            object="invoice",
            created=to_unix(row.created_at) or 0,
            status=row.status,
            tier=row.tier,
            amount_due=row.amount_due,
            amount_paid=row.amount_paid,
            currency=row.currency,
            description=row.description,
            hosted_invoice_url=row.hosted_invoice_url,
            period_start=to_unix(row.period_start),
            period_end=to_unix(row.period_end),
            stripe_invoice_id=row.stripe_invoice_id,
        )


class PortalSession(BaseModel):
    object: Literal["billing_portal.session"] = "billing_portal.session"
    url: str


class WebhookReceipt(BaseModel):
    received: bool = True
    duplicate: bool = False
    processed: bool = Field(description="False for event types CallCov does not act on")
