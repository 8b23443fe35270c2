"""A client's first session against a running CallCov, for the smoke scripts (docker-smoke.sh, gpu-smoke.sh).

Waits for ``/health``, registers a user, reads the verification code (from the embedded SQLite outbox,
or from the output of a command such as ``docker logs``), signs in, optionally subscribes to a paid
tier (full analysis), makes a test API key, submits the given recordings at once, polls each analysis
until it is finished, and prints one JSON summary line. Exits non-zero when an analysis is not
``completed`` in time, or (``--expect-llm``) when ``results.evaluation.llm`` differs.

    python scripts/smoke_api.py --base-url http://127.0.0.1:8000 --audio call.wav \
        --outbox-sqlite var/callcov.db [--tier starter] [--expect-llm evaluated]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "Sm0ke-test-" + secrets.token_hex(4)
CODE = re.compile(r'"code":\s*"([^"]+)"')


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def wait_healthy(client: httpx.Client, timeout_s: float) -> float:
    """Seconds until ``GET /health`` answered 200."""
    started = time.monotonic()
    while True:
        try:
            if client.get("/health", timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"/health did not answer 200 within {timeout_s:.0f} s")
        time.sleep(2)


def verification_code(email: str, outbox_sqlite: Path | None, code_command: str | None) -> str:
    """The code of the last verification email to ``email`` (the outbox is written asynchronously)."""
    for _ in range(30):
        text = ""
        if outbox_sqlite is not None and outbox_sqlite.exists():
            with sqlite3.connect(f"file:{outbox_sqlite}?mode=ro", uri=True) as db:
                rows = db.execute(
                    "SELECT body_text FROM email_messages WHERE to_address = ? ORDER BY created_at",
                    (email,),
                ).fetchall()
            text = "\n".join(row[0] for row in rows)
        elif code_command:
            done = subprocess.run(code_command, shell=True, capture_output=True, text=True, timeout=60)
            text = "\n".join(
                line for line in (done.stdout + done.stderr).splitlines() if email in line or "code" in line
            )
        codes = CODE.findall(text)
        if codes:
            return codes[-1]
        time.sleep(1)
    raise SystemExit(f"no verification code for {email} found")


def check(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:500]}"
        )
    return response.json() if response.content else {}


def sign_up(client: httpx.Client, args: argparse.Namespace) -> str:
    """Registers, verifies, subscribes when asked; returns a test-mode API key."""
    email = f"smoke-{secrets.token_hex(4)}@example.com"
    check(client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}), 200, 201)
    code = verification_code(email, args.outbox_sqlite, args.code_command)
    tokens = check(client.post("/api/v1/auth/verify-email", json={"code": code}), 200)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    if args.tier:
        check(client.post("/api/v1/billing/subscription", json={"tier": args.tier}, headers=bearer), 200, 201)
    key = check(
        client.post("/api/v1/api-keys", json={"description": "smoke", "mode": "test"}, headers=bearer),
        200,
        201,
    )
    return str(key["api_key"])


def submit(client: httpx.Client, api_key: str, audio: Path, index: int) -> str:
    with audio.open("rb") as file:
        created = check(
            client.post(
                "/api/v1/analysis",
                headers={"X-API-Key": api_key},
                files={"audio_file": (audio.name, file, "audio/wav")},
                data={
                    "agent_id": "agent_smoke",
                    "contact_id": f"contact_{index}",
                    "call_direction": "inbound",
                },
                timeout=120,
            ),
            201,
        )
    return str(created["id"])


def poll(client: httpx.Client, api_key: str, ids: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Each analysis once it is no longer ``processing`` (with the seconds from submission to that)."""
    started = time.monotonic()
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        for analysis_id in ids:
            if analysis_id in done:
                continue
            response = client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": api_key})
            if response.status_code == 429:  # the key's rate limit: wait for its window
                time.sleep(min(float(response.headers.get("Retry-After", 10)), 30))
                continue
            body = check(response, 200)
            if body["status"] != "processing":
                body["_finished_after_s"] = round(time.monotonic() - started, 2)
                done[analysis_id] = body
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"{len(ids) - len(done)} analyses still processing after {timeout_s:.0f} s")
        # Within the default rate limit (100 requests a minute per key) however many are pending.
        time.sleep(max(2.0, 0.8 * (len(ids) - len(done))))
    return done


def summary(done: dict[str, dict[str, Any]], wall_s: float) -> dict[str, Any]:
    rows = []
    for analysis_id, body in done.items():
        results = body.get("results") or {}
        call = body.get("call") or {}
        metadata = body.get("metadata") or {}
        duration_s = (call.get("duration_ms") or 0) / 1000
        processing_ms = metadata.get("processing_time_ms")
        rows.append(
            {
                "id": analysis_id,
                "status": body["status"],
                "error": metadata.get("error_message"),
                "llm": (results.get("evaluation") or {}).get("llm"),
                "evaluation": results.get("evaluation"),
                "audio_s": duration_s,
                "processing_ms": processing_ms,
                "processing_rtf": round(processing_ms / 1000 / duration_s, 3)
                if processing_ms and duration_s
                else None,
                "finished_after_s": body["_finished_after_s"],
            }
        )
    return {
        "analyses": rows,
        "wall_s": round(wall_s, 2),
        "analyses_per_hour": round(len(rows) / wall_s * 3600) if wall_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--audio", type=Path, action="append", required=True, help="a recording; repeat for more"
    )
    parser.add_argument(
        "--outbox-sqlite", type=Path, help="the embedded database (reads the verification email)"
    )
    parser.add_argument("--code-command", help="a shell command whose output contains the verification email")
    parser.add_argument("--tier", help="subscribe to this tier first (e.g. starter: the full analysis)")
    parser.add_argument("--expect-llm", help="required value of results.evaluation.llm (e.g. evaluated)")
    parser.add_argument("--health-timeout", type=float, default=300)
    parser.add_argument("--timeout", type=float, default=300, help="seconds for all analyses to finish")
    args = parser.parse_args(argv)

    with httpx.Client(base_url=args.base_url, timeout=30) as client:
        say(f"/health answered after {wait_healthy(client, args.health_timeout):.1f} s")
        api_key = sign_up(client, args)
        started = time.monotonic()
        ids = [submit(client, api_key, audio, i) for i, audio in enumerate(args.audio)]
        say(f"submitted {len(ids)} analyses")
        done = poll(client, api_key, ids, args.timeout)
        report = summary(done, time.monotonic() - started)
    say(json.dumps(report))
    failures = [row for row in report["analyses"] if row["status"] != "completed"]
    if args.expect_llm:
        failures += [row for row in report["analyses"] if row["llm"] != args.expect_llm]
    for row in failures:
        say(
            f"FAILED: analysis {row['id']}: status {row['status']}, llm {row['llm']!r}, error {row['error']!r}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
