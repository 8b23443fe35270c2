"""The plans of CONTRACT.md §5 and the arithmetic of included minutes and overage."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Tier = Literal["free", "starter", "growth"]
Level = Literal["compliance", "full"]


@dataclass(frozen=True)
class Plan:
    tier: Tier
    name: str
    price_cents: int  # per month
    minutes_included: int
    overage_cents_per_minute: Decimal | None  # None: overage not allowed
    analysis_level: Level
    priority: bool
    features: tuple[str, ...]
    rank: int  # orders upgrades and downgrades

    @property
    def overage_allowed(self) -> bool:
        return self.overage_cents_per_minute is not None

    @property
    def price_monthly(self) -> int:
        return self.price_cents // 100

    @property
    def overage_rate(self) -> float | None:
        """USD per minute, as the API shows it."""
        if self.overage_cents_per_minute is None:
            return None
        return float(self.overage_cents_per_minute / 100)

    def overage_minutes(self, minutes_used: float) -> float:
        return max(0.0, minutes_used - self.minutes_included) if self.overage_allowed else 0.0

    def overage_cents(self, minutes_used: float) -> int:
        """What the overage of a period costs, in whole cents (half up)."""
        return self.cents_for(self.overage_minutes(minutes_used))

    def cents_for(self, overage_minutes: float) -> int:
        """What ``overage_minutes`` cost at this plan's rate, in whole cents (half up)."""
        if self.overage_cents_per_minute is None:
            return 0
        exact = Decimal(repr(overage_minutes)) * self.overage_cents_per_minute
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def fits(self, minutes_used: float, minutes: float) -> bool:
        """Whether ``minutes`` more may be recorded in a period that has used ``minutes_used``."""
        return self.overage_allowed or minutes_used + minutes <= self.minutes_included + 1e-9


PLANS: dict[str, Plan] = {
    "free": Plan(
        tier="free",
        name="Free",
        price_cents=0,
        minutes_included=500,
        overage_cents_per_minute=None,
        analysis_level="compliance",
        priority=False,
        features=("Transcription and compliance checks", "500 minutes/month"),
        rank=0,
    ),
    "starter": Plan(
        tier="starter",
        name="Starter",
        price_cents=4900,
        minutes_included=1000,
        overage_cents_per_minute=Decimal(5),
        analysis_level="full",
        priority=False,
        features=(
            "16-Point Compliance Analysis",
            "1,000 minutes/month",
            "$0.05/min overage",
            "Email Support",
        ),
        rank=1,
    ),
    "growth": Plan(
        tier="growth",
        name="Growth",
        price_cents=19900,
        minutes_included=5000,
        overage_cents_per_minute=Decimal(4),
        analysis_level="full",
        priority=True,
        features=(
            "Advanced AI analysis",
            "5,000 minutes/month",
            "$0.04/min overage",
            "Priority processing",
        ),
        rank=2,
    ),
}


def plan_of(tier: str) -> Plan:
    return PLANS[tier]


def cents_to_usd(cents: int) -> float:
    return float(Decimal(cents) / 100)
