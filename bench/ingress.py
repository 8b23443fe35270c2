"""Ingress overhead: the same FastAPI app served by plain uvicorn and through Ray Serve, side by side.

Measures requests/s and p50/p99 latency (wrk, 1 thread, 16 connections, loopback only, bounded in
time) of ``GET /api/v1/users/me`` (JWT) and ``GET /api/v1/analysis?limit=1`` (API key), then writes
the table and the Serve/uvicorn ratios into docs/benchmarks.md.

    python bench/ingress.py [--duration 10] [--connections 16] [--rounds 3] [--variants 0,1]

Needs PostgreSQL and Redis (scripts/services.sh) and wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import psycopg
import yaml

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

# Each Serve variant: its environment, and whether it runs the api application alone (like the uvicorn
# baseline, which serves the app and nothing else) or the whole service of configs/serve.local.yaml
# (the idle whisper, llm and dispatcher replicas share the two cores with the request path).
VARIANTS: dict[str, tuple[dict[str, str], str] | None] = {
    "uvicorn (1 process, uvloop + httptools)": None,
    "Ray Serve, defaults (proxy -> replica), api application": (dict(RAY_DEFAULT_LOOPS), "api"),
    "Ray Serve, user code and router on the replica's main loop, api application": (
        {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0", "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"},
        "api",
    ),
    "Ray Serve, defaults, whole service (api, whisper, llm, dispatcher)": (dict(RAY_DEFAULT_LOOPS), "all"),
}


@functools.cache
def api_only_config() -> Path:
    """configs/serve.local.yaml with the ``api`` application alone (and no LLM check in /health),
    written once per run."""
    config = yaml.safe_load((ROOT / "configs" / "serve.local.yaml").read_text())
    config["applications"] = [app for app in config["applications"] if app["name"] == "api"]
    config["applications"][0]["args"].pop("llm_model", None)
    handle, name = tempfile.mkstemp(prefix="callcov-ingress-", suffix=".yaml")
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(config, out)
    return Path(name)


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU per request of the processes on the request path (uvicorn's one process; Serve's HTTP proxy
    # and api replica), each, and the machine's busy share of its cores during the cell.
    cpu_ms: dict[str, float] = field(default_factory=dict)
    busy_pct: float = 0.0


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


def start(variant: tuple[dict[str, str], str] | None, env: dict[str, str]) -> subprocess.Popen[bytes]:
    extra: dict[str, str] = {}
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
        extra, apps = variant
        cmd = [str(BIN / "callcov-serve"), "--port", str(PORT), "--skip-migrations"]
        if apps == "api":
            cmd += ["--config", str(api_only_config())]
    proc = subprocess.Popen(
        cmd,
        env={**env, **extra},
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
                    time.sleep(5)  # let the start-up work (Ray's and the replicas') settle
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


# The processes on the request path, found by command line.
REQUEST_PATH = {"uvicorn": ("bin/uvicorn",), "serve": ("ray::ProxyActor", "ray::ServeReplica:api")}


def cpu_seconds(needles: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the processes whose command line holds each needle."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(needles, 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for needle in needles:
            if needle in cmd:
                used[needle] += (int(fields[11]) + int(fields[12])) / tick
    return used


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (idle and iowait are not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def wrk(url: str, header: str, duration: int, connections: int, processes: tuple[str, ...] = ()) -> Result:
    before, (busy0, total0) = cpu_seconds(processes), machine_jiffies()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after, (busy1, total1) = cpu_seconds(processes), machine_jiffies()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    cpu_ms = {name: (after[name] - before[name]) * 1000 / max(requests, 1) for name in processes}
    busy = 100 * (busy1 - busy0) / max(total1 - total0, 1)
    return Result(rps, _latency(out, "50%"), _latency(out, "99%"), errors, cpu_ms, busy)


def _latency(out: str, pct: str) -> float:
    value, unit = re.search(rf"{pct}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure_variant(
    variant: tuple[dict[str, str], str] | None,
    env: dict[str, str],
    email: str,
    key: str,
    args: argparse.Namespace,
) -> dict[str, Result]:
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
        processes = REQUEST_PATH["uvicorn" if variant is None else "serve"]
        return {
            label: wrk(url, header, args.duration, args.connections, processes)
            for label, (url, header) in targets.items()
        }
    finally:
        stop(proc)


def median(results: list[Result]) -> Result:
    """The round with the median req/s (its latencies and CPU with it), and the errors of every round."""
    middle = sorted(results, key=lambda r: r.rps)[len(results) // 2]
    return replace(middle, errors=sum(r.errors for r in results))


def measure(
    env: dict[str, str], email: str, key: str, args: argparse.Namespace
) -> dict[str, dict[str, Result]]:
    """Every chosen variant once per round, rounds interleaved (so a slower minute of the machine
    falls on every variant), then the median round of each cell."""
    chosen = [name for i, name in enumerate(VARIANTS) if args.variants is None or i in args.variants]
    rounds: dict[str, list[dict[str, Result]]] = {name: [] for name in chosen}
    for n in range(args.rounds):
        for name in chosen:
            rounds[name].append(measure_variant(VARIANTS[name], env, email, key, args))
            print(f"round {n + 1}", name, {k: vars(v) for k, v in rounds[name][-1].items()}, flush=True)
    return {
        name: {label: median([cells[label] for cells in runs]) for label in runs[0]}
        for name, runs in rounds.items()
    }


def render(results: dict[str, dict[str, Result]], args: argparse.Namespace) -> str:
    baseline = results[next(iter(VARIANTS))]
    lines = [
        MARK_BEGIN,
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/ingress.py` on this 2-core machine: wrk, 1 thread, "
        f"{args.connections} connections, {args.duration} s per cell after a 2 s warm-up, loopback; each variant started "
        f"once per round, {args.rounds} rounds interleaved, the median round shown. PostgreSQL and "
        "Redis local; every request authenticates against the database and is counted by the Redis rate limiter.",
        "",
        "CPU ms per request: the request path's processes (uvicorn; Serve's proxy + api replica), from /proc "
        "during the cell; machine busy: both cores, everything on them (wrk, PostgreSQL, Redis, Ray included).",
        "",
        "| server | endpoint | req/s | p50 ms | p99 ms | non-2xx | CPU ms per request | machine busy | "
        "req/s vs uvicorn |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cells in results.items():
        for label, r in cells.items():
            ratio = r.rps / baseline[label].rps
            cpu = " + ".join(f"{ms:.1f}" for ms in r.cpu_ms.values())
            if len(r.cpu_ms) > 1:
                cpu += f" = {sum(r.cpu_ms.values()):.1f}"
            lines.append(
                f"| {name} | {label} | {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {cpu} | "
                f"{r.busy_pct:.0f} % | {ratio:.2f} |"
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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is written")
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
