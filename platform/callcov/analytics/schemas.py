"""The agent scorecard, as ``GET /analytics/agents`` returns it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CheckRate(BaseModel):
    passed: int
    failed: int
    not_applicable: int
    pass_rate: float | None = Field(description="passed / (passed + failed); null when it never applied.")


class TrendPoint(BaseModel):
    start: int = Field(description="Unix seconds: the start of the bucket (UTC day or ISO week).")
    calls: int
    pass_rate: float | None


class Period(BaseModel):
    start: int
    end: int
    bucket: Literal["day", "week"]


class AgentScorecard(BaseModel):
    object: Literal["agent_scorecard"] = "agent_scorecard"
    agent_id: str
    livemode: bool
    period: Period
    calls: int = Field(description="Completed calls in the period.")
    minutes: float
    pass_rate: float | None = Field(description="Over every compliance requirement that applied.")
    checks: dict[str, CheckRate] = Field(description="By compliance requirement (`results.compliance`).")
    trend: list[TrendPoint]
