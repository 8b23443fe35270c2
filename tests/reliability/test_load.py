"""Load: a few hundred concurrent clients mixing submissions, reads and lists against the running service,
bounded in time and requests. No 5xx and no dropped connection; p50/p99 per kind of request recorded."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability.audit import render_calls, submit
from reliability.fixtures import Figures, Service
from webhook_receiver import Receiver

pytestmark = pytest.mark.reliability

CLIENTS = int(os.environ.get("CALLCOV_LOAD_CLIENTS", "200"))
DURATION_S = float(os.environ.get("CALLCOV_LOAD_DURATION_S", "30"))
MAX_REQUESTS = int(os.environ.get("CALLCOV_LOAD_MAX_REQUESTS", "8000"))
# Of every 100 requests: submissions (each a real upload and a real analysis), reads, lists.
MIX = (("submit", 2), ("read", 49), ("list", 49))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Load:
    def __init__(
        self, url: str, key: dict[str, str], audio: list[bytes], ids: list[str], hook_url: str
    ) -> None:
        self.url, self.key, self.audio, self.ids, self.hook_url = url, key, audio, ids, hook_url
        self.latency: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.kinds = [kind for kind, weight in MIX for _ in range(weight)]

    async def request(self, client: httpx.AsyncClient, kind: str, rng: random.Random) -> httpx.Response:
        if kind == "submit":
            n = rng.randrange(len(self.audio))
            data = {"agent_id": f"agent_{n}", "contact_id": f"load-{self.sent}", "webhook_url": self.hook_url}
            files = {"audio_file": ("call.wav", self.audio[n], "audio/wav")}
            response = await client.post("/api/v1/analysis", data=data, files=files)
            if response.status_code == 201:
                self.ids.append(response.json()["id"])
            return response
        if kind == "read":
            return await client.get(f"/api/v1/analysis/{rng.choice(self.ids)}")
        return await client.get(
            "/api/v1/analysis", params={"limit": 20, "agent_id": f"agent_{rng.randrange(3)}"}
        )

    async def client(self, number: int, deadline: float) -> None:
        rng = random.Random(number)
        async with httpx.AsyncClient(base_url=self.url, headers=self.key, timeout=120) as client:
            while time.monotonic() < deadline and self.sent < MAX_REQUESTS:
                self.sent += 1
                kind = rng.choice(self.kinds)
                started = time.monotonic()
                try:
                    response = await self.request(client, kind, rng)
                except httpx.HTTPError as exc:
                    self.errors[type(exc).__name__] += 1
                    continue
                self.latency[kind].append(time.monotonic() - started)
                self.statuses[str(response.status_code)] += 1

    async def run(self) -> float:
        started = time.monotonic()
        deadline = started + DURATION_S
        await asyncio.gather(*(self.client(n, deadline) for n in range(CLIENTS)))
        return time.monotonic() - started

    def figures(self, wall_s: float) -> dict[str, Any]:
        total = sum(self.statuses.values())
        per_kind = {
            kind: {
                "requests": len(values),
                "p50_ms": round(1000 * percentile(values, 0.50)),
                "p99_ms": round(1000 * percentile(values, 0.99)),
                "mean_ms": round(1000 * statistics.fmean(values)) if values else 0,
            }
            for kind, values in self.latency.items()
        }
        return {
            "clients": CLIENTS,
            "wall_s": round(wall_s, 1),
            "responses": total,
            "requests_per_s": round(total / wall_s, 1),
            "statuses": dict(self.statuses),
            "connection_errors": dict(self.errors),
            "by_kind": per_kind,
        }


def test_hundreds_of_clients_mixing_submissions_reads_and_lists(
    service: Service,
    account: dict[str, Any],
    receiver: tuple[Receiver, str],
    figures: Figures,
    tmp_path: Path,
) -> None:
    calls = render_calls(tmp_path)
    seed = [
        submit(service.url, account["key"], path, f"load-seed-{n}", receiver[1])
        for n, path in enumerate(calls)
    ]
    load = Load(service.url, account["key"], [path.read_bytes() for path in calls], seed, receiver[1])
    wall_s = asyncio.run(load.run())
    result = load.figures(wall_s)
    figures.record("load", result)
    server_errors = {status: n for status, n in load.statuses.items() if status.startswith("5")}
    assert not server_errors and not load.errors, result
    assert load.statuses["200"] > 0 and load.statuses["201"] > 0, result
    assert service.healthy()
