"""Ingress overhead: the same FastAPI app served by plain uvicorn and through Ray Serve, side by side.

Measures requests/s and p50/p99 latency (wrk, 1 thread, 16 connections, loopback only, bounded in
time) of ``GET /api/v1/users/me`` (JWT) and ``GET /api/v1/analysis?limit=1`` (API key), then writes
the table and the Serve/uvicorn ratios into docs/benchmarks.md.

    python bench/ingress.py [--duration 10] [--connections 16] [--variants 0,2]

Needs PostgreSQL and Redis (scripts/services.sh) and wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("CALLCOV_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "Bench-passw0rd!"
PORT = 8765
MARK_BEGIN, MARK_END = "<!-- ingress:begin -->", "<!-- ingress:end -->"

# Ray's own defaults, set explicitly: callcov-serve otherwise turns both off.
RAY_DEFAULT_LOOPS = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1",
}

VARIANTS = {
    "uvicorn (1 process, uvloop + httptools)": None,
    "Ray Serve, defaults (proxy -> replica, user code on its own loop thread)": dict(RAY_DEFAULT_LOOPS),
    "Ray Serve, user code and router on the replica's main loop": {
        "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
        "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
    },
    "Ray Serve, main loop, Serve's logs buffered and kept out of stderr": {
        "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
        "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
        "RAY_SERVE_LOG_TO_STDERR": "0",
        "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
    },
    "Ray Serve, direct ingress, through the proxy port": {
        **RAY_DEFAULT_LOOPS,
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
    },
}


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def base_env(db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CALLCOV_ENVIRONMENT": "testing",
        "CALLCOV_DB__URL": db_url,
        "CALLCOV_REDIS__URL": "redis://127.0.0.1:6379/0",
        "CALLCOV_REDIS__KEY_PREFIX": f"bench:{uuid.uuid4().hex}:",
        "CALLCOV_AUTH__JWT_SECRET": SECRET,
        "CALLCOV_AUTH__API_KEY_PEPPER": SECRET,
        # The point is the serving path: the limiter still runs (one Redis call per request).
        "CALLCOV_RATELIMIT__DEFAULT_PER_WINDOW": "100000000",
        # Benches submit hours of audio on test keys: lift the test-mode quota (docs/api.md, Billing).
        "CALLCOV_BILLING__TEST_MINUTES_PER_PERIOD": "100000000",
        "CALLCOV_LOG_LEVEL": "WARNING",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def fresh_database() -> str:
    name = "callcov_bench"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def credentials(env: dict[str, str], mode: str = "live") -> tuple[str, str]:
    subprocess.run([BIN / "callcov", "migrate"], env=env, check=True, capture_output=True)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    subprocess.run(
        [BIN / "callcov", "create-user", email, "--password", PASSWORD],
        env=env,
        check=True,
        capture_output=True,
    )
    key = subprocess.run(
        [BIN / "callcov", "create-api-key", email, "--mode", mode],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return email, key


def start(variant: dict[str, str] | None, env: dict[str, str]) -> subprocess.Popen[bytes]:
    if variant is None:
        cmd = [
            str(BIN / "uvicorn"),
            "callcov.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(PORT),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    else:
        cmd = [str(BIN / "callcov-serve"), "--port", str(PORT), "--skip-migrations"]
    proc = subprocess.Popen(
        cmd,
        env={**env, **(variant or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=ROOT,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=2).status_code == 200:
                if variant is None or all_running(env):
                    return proc
        except httpx.TransportError:
            pass
        time.sleep(1)
    stop(proc)
    raise RuntimeError("server did not start")


def all_running(env: dict[str, str]) -> bool:
    """Every Serve application is up (the model replicas load their weights after the api is ready,
    and would take the CPU from the measurement)."""
    out = subprocess.run([BIN / "serve", "status"], env=env, capture_output=True, text=True).stdout
    statuses = re.findall(r"^    status: (\w+)", out, flags=re.M)
    return bool(statuses) and all(status == "RUNNING" for status in statuses)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wrk(url: str, header: str, duration: int, connections: int) -> Result:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    return Result(rps, _latency(out, "50%"), _latency(out, "99%"), errors)


def _latency(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(
    env: dict[str, str], email: str, key: str, args: argparse.Namespace
) -> dict[str, dict[str, Result]]:
    results: dict[str, dict[str, Result]] = {}
    chosen = [name for i, name in enumerate(VARIANTS) if args.variants is None or i in args.variants]
    for name in chosen:
        variant = VARIANTS[name]
        proc = start(variant, env)
        try:
            base = f"http://127.0.0.1:{PORT}"
            jwt = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
            targets = {
                "GET /api/v1/users/me (JWT)": (
                    f"{base}/api/v1/users/me",
                    f"Authorization: Bearer {jwt['access_token']}",
                ),
                "GET /api/v1/analysis?limit=1 (API key)": (
                    f"{base}/api/v1/analysis?limit=1",
                    f"X-API-Key: {key}",
                ),
            }
            for url, header in targets.values():  # warm-up
                wrk(url, header, 2, args.connections)
            results[name] = {
                label: wrk(url, header, args.duration, args.connections)
                for label, (url, header) in targets.items()
            }
        finally:
            stop(proc)
        print(name, {k: vars(v) for k, v in results[name].items()})
    return results


def render(results: dict[str, dict[str, Result]], args: argparse.Namespace) -> str:
    baseline = results[next(iter(VARIANTS))]
    lines = [
        MARK_BEGIN,
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/ingress.py` on this 2-core machine: wrk, 1 thread, "
        f"{args.connections} connections, {args.duration} s per cell after a 2 s warm-up, loopback. PostgreSQL and "
        "Redis local; every request authenticates against the database and is counted by the Redis rate limiter.",
        "",
        "| server | endpoint | req/s | p50 ms | p99 ms | non-2xx | req/s vs uvicorn |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, cells in results.items():
        for label, r in cells.items():
            ratio = r.rps / baseline[label].rps
            lines.append(
                f"| {name} | {label} | {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {ratio:.2f} |"
            )
    lines.append(MARK_END)
    return "\n".join(lines)


def write_section(begin: str, end: str, block: str, heading: str = "") -> None:
    """Replace the block between ``begin`` and ``end`` in docs/benchmarks.md (append it if absent).
    ``block`` includes both markers."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text += (f"\n## {heading}\n\n" if heading else "\n") + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--variants",
        type=lambda text: {int(i) for i in text.split(",")},
        help="comma-separated indexes into VARIANTS (0 is uvicorn, the baseline: keep it); default all",
    )
    args = parser.parse_args()
    env = base_env(fresh_database())
    email, key = credentials(env)
    table = render(measure(env, email, key, args), args)
    write_section(MARK_BEGIN, MARK_END, table, "Ingress: Ray Serve vs plain uvicorn")


if __name__ == "__main__":
    main()
