"""Submitting a batch of calls through the public API and auditing what became of it, from the database
and the webhook receiver: nothing lost, nothing duplicated, usage once, every webhook delivered."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from webhook_receiver import Receiver

CALL_NAMES = ("balance", "short", "charged_twice")


def render_calls(folder: Path) -> list[Path]:
    """The synthetic calls whose answers the model stand-ins recorded (scripts/record_sim_fixtures.py)."""
    import sys

    scripts = str(Path(__file__).resolve().parents[2] / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    from record_sim_fixtures import render

    return [render(name, folder).path for name in CALL_NAMES]


def submit(url: str, key: dict[str, str], audio: Path, tag: str, hook_url: str) -> str:
    with audio.open("rb") as file:
        r = httpx.post(
            f"{url}/api/v1/analysis",
            headers=key,
            timeout=60,
            data={
                "agent_id": "agent_rel",
                "contact_id": tag,
                "call_direction": "inbound",
                "webhook_url": hook_url,
            },
            files={"audio_file": (audio.name, file, "audio/wav")},
        )
    assert r.status_code == 201, f"{tag}: HTTP {r.status_code}: {r.text[:300]}"
    return str(r.json()["id"])


def submit_batch(
    url: str, key: dict[str, str], calls: list[Path], scenario: str, n: int, hook_url: str
) -> list[str]:
    return [submit(url, key, calls[i % len(calls)], f"{scenario}-{i}", hook_url) for i in range(n)]


@dataclass
class Audit:
    accepted: int
    completed: int
    failed: int
    still_processing: int
    analysis_rows: int
    usage_rows: int
    events_delivered: int
    received_analyses: int
    duplicate_deliveries: int
    unverified_deliveries: int

    @property
    def clean(self) -> bool:
        n = self.accepted
        return (
            self.completed == n
            and self.analysis_rows == n
            and self.usage_rows == n
            and self.events_delivered == n
            and self.received_analyses == n
            and self.unverified_deliveries == 0
        )

    def figures(self) -> dict[str, Any]:
        return {**self.__dict__, "lost": self.accepted - self.completed}


def _statuses(db_url: str, scenario: str) -> tuple[Counter[str], dict[str, int]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT a.id::text, a.status,
                      (SELECT count(*) FROM usage_records u WHERE u.analysis_id = a.id),
                      (SELECT count(*) FROM webhook_events e WHERE e.analysis_id = a.id AND e.status = 'delivered')
               FROM analyses a WHERE a.contact_id LIKE %s""",
            (f"{scenario}-%",),
        ).fetchall()
    statuses = Counter(row[1] for row in rows)
    totals = {
        "rows": len(rows),
        "usage": sum(r[2] for r in rows),
        "delivered": sum(min(r[3], 1) for r in rows),
    }
    return statuses, totals


def audit(db_url: str, scenario: str, ids: list[str], receiver: Receiver) -> Audit:
    statuses, totals = _statuses(db_url, scenario)
    wanted = set(ids)
    per_analysis: Counter[str] = Counter()
    messages: dict[str, set[str]] = {}
    unverified = 0
    for item in list(receiver.received):
        body = item.json()
        if body.get("id") not in wanted:
            continue
        per_analysis[body["id"]] += 1
        messages.setdefault(body["id"], set()).add(item.msg_id)
        unverified += 0 if item.verified_by else 1
    return Audit(
        accepted=len(ids),
        completed=statuses.get("completed", 0),
        failed=statuses.get("failed", 0),
        still_processing=statuses.get("processing", 0),
        analysis_rows=totals["rows"],
        usage_rows=totals["usage"],
        events_delivered=totals["delivered"],
        received_analyses=len(per_analysis),
        duplicate_deliveries=sum(per_analysis.values()) - len(per_analysis),
        unverified_deliveries=unverified,
    )


def settle(
    db_url: str, scenario: str, ids: list[str], receiver: Receiver, timeout_s: float
) -> tuple[Audit, float]:
    """Waits until every analysis is finished and its webhook delivered (or the timeout); the audit and
    the seconds it took."""
    started = time.monotonic()
    while True:
        result = audit(db_url, scenario, ids, receiver)
        done = (
            result.completed + result.failed == result.accepted and result.events_delivered >= result.accepted
        )
        if done or time.monotonic() - started > timeout_s:
            return result, round(time.monotonic() - started, 1)
        time.sleep(1)
