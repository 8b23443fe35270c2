"""Hostile input against the running service: schemathesis (every phase, stateful included) over the whole
API, slowloris connections, huge headers and decoder bombs. The service must answer each with a
documented 4xx (never a 5xx) and stay available to everyone else."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability.fixtures import REPORT, Figures, Service, new_account

pytestmark = pytest.mark.reliability

FUZZ_S = int(os.environ.get("CALLCOV_RELIABILITY_FUZZ_S", "60"))
# Conformance failures argued in docs/reliability.md ("Schemathesis"): a schema-valid request (ST202)
# refused with one of these documented codes, which depend on state the schema cannot express (which
# tokens exist, the API-key cap, the bytes of an upload, the billing provider). Anything else fails.
ARGUED = {
    ("ST202", "invalid_token"),
    ("ST202", "api_key_limit_reached"),
    ("ST202", "invalid_file_format"),
    ("ST202", "billing_portal_unavailable"),
    ("ST202", "invalid_password"),  # a random current_password is not the account's
    ("ST202", "invalid_tier"),  # a state: the account is already on that plan
    # email-validator refuses special-use domains (`i@i.test`), which `format: email` allows.
    ("ST202", "validation_error:special_use_domain"),
}
# The same for a generic code, on the one operation where it means a state: the email is taken
# (register) or already verified (resend-verification).
ARGUED_ON = {
    ("POST /api/v1/auth/register", "ST202", "bad_request"),
    ("POST /api/v1/auth/resend-verification", "ST202", "bad_request"),
    # A rubric document is validated past its JSON Schema: its patterns are compiled and timed (422),
    # and built-in or archived rubrics take no new version and cannot be archived (400).
    ("POST /api/v1/rubrics", "ST202", "None"),
    ("POST /api/v1/rubrics/{rubric_ref}/versions", "ST202", "None"),
    ("POST /api/v1/rubrics/{rubric_ref}/versions", "ST202", "bad_request"),
    ("DELETE /api/v1/rubrics/{rubric_ref}", "ST202", "bad_request"),
    # A re-scoring depends on the analysis' state (still processing, no transcript, audio deleted:
    # 409), on which rubrics the account has and whether the analysis has a webhook URL (400
    # validation_error), and on the plan's minutes for a retranscription (402).
    ("POST /api/v1/analysis/{analysis_id}/rescore", "ST202", "conflict"),
    ("POST /api/v1/analysis/{analysis_id}/rescore", "ST202", "validation_error"),
    ("POST /api/v1/analysis/{analysis_id}/rescore", "ST202", "usage_limit_exceeded"),
}
CHECK = re.compile(r"- (ST\d+) ")
CODE = re.compile(r'"code":"([a-z_]+)"')


def schemathesis(service: Service, headers: dict[str, str], name: str, *filters: str) -> dict[str, Any]:
    """``st run --checks all`` with every phase, bounded by ``FUZZ_S``; failures by check name. The JUnit
    report (each failure with its reproducing curl) is kept beside the figures."""
    report = REPORT.parent / f"schemathesis-{name}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        str(Path(sys.executable).parent / "st"), "run", f"{service.url}/api/v1/openapi.json",
        "--url", service.url, "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-time", str(FUZZ_S), "--workers", "2", "--request-timeout", "60", "--seed", "1",
        "--report", "junit", "--report-junit-path", str(report), "--no-color",
        *[item for name, value in headers.items() for item in ("-H", f"{name}: {value}")], *filters,
    ]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=FUZZ_S * 4 + 120)
    failures: Counter[str] = Counter()
    operations = 0
    for case in ET.parse(report).getroot().iter("testcase"):
        operations += 1
        for failure in case.iter("failure"):
            text = failure.text or failure.get("message") or ""
            check, code = CHECK.search(text), CODE.search(text)
            reason = ":special_use_domain" if "special-use or reserved name" in text else ""
            failures[f"{case.get('name')} | {check and check[1]} | {code and code[1]}{reason}"] += 1
    return {"exit_code": run.returncode, "operations": operations, "failures": dict(failures),
            "summary": run.stdout[-1500:]}  # fmt: skip


def test_schemathesis_all_checks_all_phases(
    service: Service, secrets_seen: set[str], figures: Figures
) -> None:
    fuzzed = new_account(service, secrets_seen)
    key_routes = "^/api/v1/(analysis|calls)"
    runs = {
        # The JWT drives the account routes; DELETE /users/me would end the run's own account.
        "jwt": schemathesis(
            service,
            fuzzed["jwt"],
            "jwt",
            "--exclude-path-regex",
            key_routes,
            "--exclude-operation-id",
            "users-delete_me",
        ),  # fmt: skip
        "api_key": schemathesis(service, fuzzed["key"], "api_key", "--include-path-regex", key_routes),
    }
    for run in runs.values():
        run["summary"] = run["summary"][-600:]
    figures.record("schemathesis", runs)
    failures = [f.split(" | ") for run in runs.values() for f in run["failures"]]
    server_errors = [f for f in failures if f[1] in ("ST101", "ST102") or f[2] == "internal_error"]
    unargued = [f for f in failures if (f[1], f[2]) not in ARGUED and tuple(f) not in ARGUED_ON]
    assert not server_errors, runs
    assert not unargued, runs
    assert service.healthy()


def _slow_client(url: str, stop: threading.Event, closed: list[float], body: bool) -> None:
    """Sends a request a byte at a time (headers, or the body after complete headers)."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            if body:
                sock.sendall(
                    b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                )
                sock.sendall(b"Content-Length: 100000\r\n\r\n{")
            else:
                sock.sendall(b"GET /api/v1/billing/tiers HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set():
                sock.sendall(b"a" if body else b"X-Slow: 1\r\n")
                if stop.wait(1.0):
                    break
    except OSError:
        closed.append(round(time.monotonic() - started, 1))


def test_slowloris_does_not_starve_other_clients(service: Service, figures: Figures) -> None:
    stop, closed = threading.Event(), []
    threads = [
        threading.Thread(target=_slow_client, args=(service.url, stop, closed, n % 2 == 1), daemon=True)
        for n in range(200)
    ]
    for thread in threads:
        thread.start()
    latencies = []
    try:
        for _ in range(20):
            started = time.monotonic()
            answer = httpx.get(f"{service.url}/api/v1/billing/tiers", timeout=30)
            latencies.append(time.monotonic() - started)
            assert answer.status_code == 200
            time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    result = {
        "slow_connections": len(threads),
        "closed_by_server": len(closed),
        "closed_after_s": sorted(closed)[:3],
        "other_client_max_ms": round(1000 * max(latencies)),
        "other_client_p50_ms": round(1000 * sorted(latencies)[len(latencies) // 2]),
    }
    figures.record("slowloris", result)
    assert max(latencies) < 5, result


def test_huge_headers_are_refused(service: Service, figures: Figures) -> None:
    outcomes = {}
    cases = {
        "one_1MiB_header": {"X-Big": "a" * (1 << 20)},
        "2000_headers": {f"X-H{n}": "v" * 50 for n in range(2000)},
    }
    for name, headers in cases.items():
        try:
            status: Any = httpx.get(
                f"{service.url}/api/v1/billing/tiers", headers=headers, timeout=30
            ).status_code
        except httpx.RemoteProtocolError:
            status = "connection closed"
        outcomes[name] = status
    figures.record("huge_headers", outcomes)
    assert all(s == 431 for s in outcomes.values()), outcomes
    assert service.healthy()


def _silence_flac(path: Path, hours: float) -> Path:
    # -D: no dither, so the FLAC of silence stays small (a decoder bomb: ~0.5 MB for 5 h).
    subprocess.run(["sox", "-D", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", str(hours * 3600)],
                   check=True)  # fmt: skip
    return path


def _lying_wav(path: Path) -> Path:
    """One second of audio whose RIFF and data sizes claim ~6 hours."""
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(path), "synth", "1", "sine", "440"],
        check=True,
    )
    data = bytearray(path.read_bytes())
    data[4:8] = (0xFFFFFFF0).to_bytes(4, "little")
    index = data.index(b"data")
    data[index + 4 : index + 8] = (0xFFFFFF00).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def test_decoder_bombs_are_refused(
    service: Service, account: dict[str, Any], figures: Figures, tmp_path: Path
) -> None:
    outcomes = {}
    for name, path in {
        # Past the 4-hour maximum call duration (docs/api.md, "Limits and retries").
        "flac_5h_silence": _silence_flac(tmp_path / "silence.flac", 5),
        "wav_header_claims_6h": _lying_wav(tmp_path / "lying.wav"),
    }.items():
        with path.open("rb") as file:
            r = httpx.post(
                f"{service.url}/api/v1/analysis", headers=account["key"], timeout=120,
                data={"agent_id": "bomb", "contact_id": name}, files={"audio_file": (path.name, file)},
            )  # fmt: skip
        body = r.json()
        outcomes[name] = {
            "bytes": path.stat().st_size,
            "status": r.status_code,
            "code": body.get("error", {}).get("code"),
            "duration_ms": body.get("call", {}).get("duration_ms"),
        }
    figures.record("decoder_bombs", outcomes)
    bomb = outcomes["flac_5h_silence"]
    assert bomb["status"] == 400 and bomb["code"] == "audio_too_long", outcomes
    lying = outcomes["wav_header_claims_6h"]
    assert (400 <= lying["status"] < 500) or (lying["duration_ms"] or 0) <= 2000, outcomes
    assert service.healthy()
