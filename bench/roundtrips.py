"""Database round trips per request on the ingress bench's endpoints, counted on the app's engine.

Runs ``create_app`` in process (PostgreSQL and Redis as in bench/ingress.py), signs a user in, and
counts for the first request of each kind and a warm one: SQL statements and transactions (each one
a BEGIN and a COMMIT or ROLLBACK round trip more). Without per-plan rate limits (the bench's configuration)
and with them. ``--json`` prints the counts (run it with another checkout first on ``PYTHONPATH`` to
get the "before" column); otherwise the table goes into docs/benchmarks.md, next to ``--before``'s.

    python bench/roundtrips.py [--json] [--before before.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from ingress import PASSWORD, SECRET, fresh_database, write_section
from sqlalchemy import event

from callcov.config import Settings
from callcov.main import create_app
from callcov.state import state_of_app

MARK_BEGIN, MARK_END = "<!-- roundtrips:begin -->", "<!-- roundtrips:end -->"
PLANS = {"free": {"default": 1_000_000, "submissions": 1_000_000}}


def settings(db_url: str, plans: bool) -> Settings:
    return Settings(
        environment="testing",
        data_dir=Path("/tmp/callcov-bench-roundtrips"),
        db={"url": db_url},
        redis={"url": "redis://127.0.0.1:6379/0", "key_prefix": f"bench:{uuid.uuid4().hex}:"},
        auth={"jwt_secret": SECRET, "api_key_pepper": SECRET},
        ratelimit={"default_per_window": 100_000_000, "plans": PLANS if plans else {}},
    )


def cli(db_url: str, *args: str) -> str:
    env = {
        "CALLCOV_ENVIRONMENT": "testing",
        "CALLCOV_DB__URL": db_url,
        "CALLCOV_AUTH__JWT_SECRET": SECRET,
        "CALLCOV_AUTH__API_KEY_PEPPER": SECRET,
        "PATH": "/usr/bin:/bin",
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    }
    code = "import sys; from callcov.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


class Counts:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.tally: Counter[str] = Counter()

    def _on(self, name: str) -> Any:
        def listener(*_args: Any, **_kwargs: Any) -> None:
            self.tally[name] += 1

        return listener

    def _begin(self, conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            self.tally["transactions"] += 1  # BEGIN, then COMMIT or ROLLBACK: two round trips

    def __enter__(self) -> Counter[str]:
        self.hooks = [
            (self.engine, "before_cursor_execute", self._on("statements")),
            (self.engine, "begin", self._begin),
        ]
        for target, name, fn in self.hooks:
            event.listen(target, name, fn)
        return self.tally

    def __exit__(self, *_exc: object) -> None:
        for target, name, fn in self.hooks:
            event.remove(target, name, fn)


async def measure(db_url: str, email: str, key: str, plans: bool) -> dict[str, dict[str, int]]:
    app = create_app(settings(db_url, plans))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    results: dict[str, dict[str, int]] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        jwt = {"Authorization": f"Bearer {login.json()['access_token']}"}
        requests = {
            "GET /api/v1/users/me (JWT)": ("GET", "/api/v1/users/me", jwt, None),
            "GET /api/v1/analysis?limit=1 (API key)": (
                "GET",
                "/api/v1/analysis?limit=1",
                {"X-API-Key": key},
                None,
            ),
            "POST /api/v1/api-keys (JWT, Idempotency-Key)": ("POST", "/api/v1/api-keys", jwt, {}),
        }
        engine = state_of_app(app).engine.sync_engine
        for label, (method, path, headers, body) in requests.items():
            # First request of the process (cold caches; an API key's last_used_at stamped), then warm.
            for when in ("first", "warm"):
                sent = {**headers, "Idempotency-Key": str(uuid.uuid4())} if method == "POST" else headers
                with Counts(engine) as tally:
                    response = await client.request(method, path, headers=sent, json=body)
                assert response.status_code < 300, response.text
                results[f"{label}, {when}"] = dict(tally)
    return results


def render(after: dict[str, Any], before: dict[str, Any] | None) -> str:
    lines = [
        MARK_BEGIN,
        "Counted by `python bench/roundtrips.py` (in process, PostgreSQL; the first request of each kind in a "
        "fresh process, then a warm one). Round trips = SQL statements + 2 per transaction (BEGIN, then "
        "COMMIT or ROLLBACK); an autocommit statement is one round trip.",
        "",
        "| rate limits | request | before: round trips (statements, transactions) | after |",
        "|---|---|---|---|",
    ]

    def cell(counts: dict[str, int] | None) -> str:
        if counts is None:
            return "n/a"
        statements, transactions = counts.get("statements", 0), counts.get("transactions", 0)
        return f"{statements + 2 * transactions} ({statements}, {transactions})"

    for scenario, requests in after.items():
        for label, counts in requests.items():
            old = (before or {}).get(scenario, {}).get(label)
            lines.append(f"| {scenario} | {label} | {cell(old)} | {cell(counts)} |")
    lines.append(MARK_END)
    return "\n".join(lines)


async def run() -> dict[str, Any]:
    db_url = fresh_database()
    cli(db_url, "migrate")
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    cli(db_url, "create-user", email, "--password", PASSWORD)
    key = cli(db_url, "create-api-key", email, "--mode", "live")
    return {
        "global only": await measure(db_url, email, key, plans=False),
        "per plan": await measure(db_url, email, key, plans=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--before", type=Path)
    args = parser.parse_args()
    after = asyncio.run(run())
    if args.json:
        print(json.dumps(after))
        return
    before = json.loads(args.before.read_text()) if args.before else None
    write_section(MARK_BEGIN, MARK_END, render(after, before), "Database round trips per request")


if __name__ == "__main__":
    main()
