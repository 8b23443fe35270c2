"""Per-agent scorecards: calls, minutes and the pass rate of each compliance requirement over a
period (the ``verdict`` of ``scoring/verdicts.py``), with a trend per day or week. Agents are paged in
``agent_id`` order by SQL; the scorecards of one page are computed from those agents' completed calls."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analytics.schemas import AgentScorecard, CheckRate, Period, TrendPoint
from callcov.kit.pagination import PageParams
from callcov.kit.time import to_unix
from callcov.models import Analysis
from callcov.scoring.verdicts import REQUIREMENTS, verdicts

Bucket = Literal["day", "week"]


@dataclass(frozen=True)
class Query:
    account_id: uuid.UUID
    livemode: bool
    start: datetime
    end: datetime
    bucket: Bucket = "week"
    agent_id: str | None = None


@dataclass
class _Tally:
    calls: int = 0
    ms: int = 0
    checks: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    trend: dict[datetime, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def _where(query: Query) -> list[Any]:
    where = [
        Analysis.user_id == query.account_id,
        Analysis.livemode == query.livemode,
        Analysis.status == "completed",
        col(Analysis.created_at) >= query.start,
        col(Analysis.created_at) < query.end,
    ]
    if query.agent_id:
        where.append(Analysis.agent_id == query.agent_id)
    return where


def bucket_start(when: datetime, bucket: Bucket) -> datetime:
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if bucket == "day" else day - timedelta(days=day.weekday())


def _rate(counts: Counter[str]) -> float | None:
    applied = counts["pass"] + counts["fail"]
    return round(counts["pass"] / applied, 4) if applied else None


def _add(tally: _Tally, row: Any, bucket: Bucket) -> None:
    tally.calls += 1
    tally.ms += row.duration_ms or 0
    point = tally.trend[bucket_start(row.created_at, bucket)]
    point["calls"] += 1
    for name, verdict in verdicts(row.results).items():
        tally.checks[name][verdict] += 1
        point[verdict] += 1


def _card(agent_id: str, tally: _Tally, query: Query) -> AgentScorecard:
    overall: Counter[str] = Counter()
    for counts in tally.checks.values():
        overall.update(counts)
    checks = {
        name: CheckRate(
            passed=tally.checks[name]["pass"],
            failed=tally.checks[name]["fail"],
            not_applicable=tally.checks[name]["not_applicable"],
            pass_rate=_rate(tally.checks[name]),
        )
        for name in REQUIREMENTS
    }
    trend = [
        TrendPoint(start=to_unix(start) or 0, calls=point["calls"], pass_rate=_rate(point))
        for start, point in sorted(tally.trend.items())
    ]
    return AgentScorecard(
        agent_id=agent_id,
        livemode=query.livemode,
        period=Period(start=to_unix(query.start) or 0, end=to_unix(query.end) or 0, bucket=query.bucket),
        calls=tally.calls,
        minutes=round(tally.ms / 60000, 4),
        pass_rate=_rate(overall),
        checks=checks,
        trend=trend,
    )


async def agent_scorecards(
    session: AsyncSession, query: Query, page: PageParams
) -> tuple[list[AgentScorecard], int]:
    where = _where(query)
    agents_q = select(Analysis.agent_id).where(*where).group_by(Analysis.agent_id)
    total = (await session.exec(select(func.count()).select_from(agents_q.subquery()))).one()
    agents = list(
        (await session.exec(agents_q.order_by(Analysis.agent_id).offset(page.skip).limit(page.limit))).all()
    )
    if not agents:
        return [], int(total)
    rows = await session.exec(
        select(Analysis.agent_id, Analysis.duration_ms, Analysis.created_at, Analysis.results).where(
            *where, col(Analysis.agent_id).in_(agents)
        )
    )
    tallies: dict[str, _Tally] = {agent: _Tally() for agent in agents}
    for row in rows.all():
        _add(tallies[row.agent_id], row, query.bucket)
    return [_card(agent, tallies[agent], query) for agent in agents], int(total)
