"""Pipeline benchmarks: transcription overhead against plain faster-whisper, real-time factor,
submit-to-completed latency and throughput through the whole service (Ray Serve, real models), and a
backlog cell: 12 one-minute calls submitted at once, run by the code before the pipelined stages (a git
worktree of ``--before-ref``) and by this checkout, one after the other in one run.

    python bench/pipeline.py [--minutes 1 5 15] [--concurrent 3] [--skip-e2e] [--backlog 12]
        [--backlog-levels compliance full]

Writes its sections of docs/benchmarks.md. Needs PostgreSQL and Redis (scripts/services.sh) and
espeak-ng + sox (scripts/system-packages.sh). Loopback only; bounded in calls and time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from ingress import PASSWORD, base_env, credentials, fresh_database, write_section  # noqa: E402
from speech import CallTruth, synthesize_call  # noqa: E402

PORT = 8766
SCRIPT = [
    (
        "agent",
        "Hello, thank you for calling Acme Bank, my name is John. This call may be recorded for quality purposes.",
    ),
    ("customer", "Hi John, I am calling because my credit card was charged twice for the same purchase."),
    ("agent", "I am sorry to hear that. Let me look into it for you. Can you confirm your date of birth?"),
    ("customer", "Sure, it is the fourth of July, nineteen eighty five."),
    ("agent", "Thank you. I can see two charges of forty dollars from the same store on Monday."),
    ("customer", "Yes, that is right. I only bought one thing there."),
    ("agent", "I will open a dispute for the second charge. You should see the refund within five days."),
    ("customer", "Great, thank you so much for your help."),
]
MARKS = {
    "transcription": ("<!-- pipeline-transcription:begin -->", "<!-- pipeline-transcription:end -->"),
    "e2e": ("<!-- pipeline-e2e:begin -->", "<!-- pipeline-e2e:end -->"),
    "backlog": ("<!-- pipeline-backlog:begin -->", "<!-- pipeline-backlog:end -->"),
}
# The last commit before the pipelined stages (one job per call, 2 slots, llama.cpp with 1 slot).
BEFORE_REF = "b0052f1"


def call_of(minutes: float, stereo: bool) -> CallTruth:
    """A synthetic two-voice call of about ``minutes`` minutes (the script's lines, repeated)."""
    per_round = synthesize_call(SCRIPT, stereo=stereo).duration_s
    lines = max(1, round(len(SCRIPT) * minutes * 60 / per_round))
    return synthesize_call((SCRIPT * (lines // len(SCRIPT) + 1))[:lines], stereo=stereo)


def transcription(minutes: float, repeats: int) -> list[str]:
    """Plain faster-whisper and the pipeline's transcriber, same model and settings, same files."""
    from faster_whisper import WhisperModel, decode_audio

    from callcov.inference.ports import TranscriptionRequest
    from deployments.model_assets import WHISPER_BASE, ensure_asset
    from deployments.whisper import WhisperTranscriber

    folder = ensure_asset(WHISPER_BASE)
    plain = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)
    ours = WhisperTranscriber({"model": "base", "device": "cpu", "compute_type": "int8", "cpu_threads": 2})
    options = {"beam_size": 5, "vad_filter": True, "word_timestamps": True}
    rows = []
    for stereo in (False, True):
        call = call_of(minutes, stereo)

        def run_plain(call: CallTruth = call, stereo: bool = stereo) -> None:
            audio = decode_audio(str(call.path), split_stereo=stereo)
            for channel in audio if stereo else [audio]:
                list(plain.transcribe(channel, **options)[0])

        def run_ours(call: CallTruth = call) -> None:
            ours.transcribe_sync(TranscriptionRequest(audio_path=str(call.path)))

        plain_s, ours_s = best_of(run_plain, repeats), best_of(run_ours, repeats)
        kind = "stereo (per channel)" if stereo else "mono (+ turns and roles)"
        rows.append(
            f"| base, int8, 2 threads | {kind} | {call.duration_s:.0f} | {plain_s:.2f} | {ours_s:.2f} | "
            f"{ours_s / plain_s:.2f} | {plain_s / call.duration_s:.3f} | {ours_s / call.duration_s:.3f} |"
        )
        print(rows[-1])
    return rows


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def start_service(
    env: dict[str, str], root: Path = ROOT, config: Path | None = None
) -> subprocess.Popen[bytes]:
    """``callcov-serve`` of the checkout at ``root`` (its modules first on the path), with ``config``
    (default: the checkout's serve.local.yaml)."""
    log = open(ROOT / "bench" / "serve.log", "w")  # noqa: SIM115
    env = {**env, "PYTHONPATH": f"{root / 'platform'}:{root}"}
    extra = ["--config", str(config)] if config is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployments.run", "--port", str(PORT), *extra],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=root,
    )
    for _ in range(300):
        try:
            # /health checks the database and the LLM (the /llm routes are the dispatcher's only).
            if httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise RuntimeError("service did not start: see bench/serve.log")


def on_growth_plan(email: str) -> None:
    """The full analysis level (the LLM's checks): a paid plan (the local ledger, no Stripe)."""
    base = f"http://127.0.0.1:{PORT}/api/v1"
    login = httpx.post(f"{base}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    login.raise_for_status()
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    httpx.post(
        f"{base}/billing/subscription", json={"tier": "growth"}, headers=token, timeout=30
    ).raise_for_status()


def submit(key: str, call: CallTruth) -> tuple[str, float]:
    with call.path.open("rb") as file:
        r = httpx.post(
            f"http://127.0.0.1:{PORT}/api/v1/analysis",
            headers={"X-API-Key": key},
            timeout=300,
            data={"agent_id": "bench", "contact_id": "bench"},
            files={"audio_file": ("c.wav", file)},
        )
    r.raise_for_status()
    return r.json()["id"], time.perf_counter()


def wait(key: str, ids: list[str], timeout_s: float, every_s: float = 0.5) -> dict[str, tuple[float, dict]]:
    """Poll until every analysis has finished: {id: (perf_counter when seen finished, body)}. One
    client for the whole wait (a new one per request costs the machine a TLS context each time)."""
    done: dict[str, tuple[float, dict]] = {}
    deadline = time.time() + timeout_s
    with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"X-API-Key": key}, timeout=30) as client:
        while len(done) < len(ids) and time.time() < deadline:
            for analysis_id in set(ids) - set(done):
                body = client.get(f"/api/v1/analysis/{analysis_id}").json()
                if body["status"] != "processing":
                    done[analysis_id] = (time.perf_counter(), body)
            time.sleep(every_s)
    return done


def end_to_end(minutes: list[float], concurrent: int) -> list[str]:
    env = base_env(fresh_database())
    env["CALLCOV_WORKER__POLL_INTERVAL_S"] = "0.5"
    _, key = credentials(env, mode="test")
    proc = start_service(env)
    rows: list[str] = []
    try:
        for length in minutes:
            call = call_of(length, stereo=True)
            analysis_id, sent = submit(key, call)
            finished, body = wait(key, [analysis_id], timeout_s=1800)[analysis_id]
            rows.append(
                _row(f"1 call of {call.duration_s / 60:.1f} min", call.duration_s, finished - sent, 1, body)
            )
            print(rows[-1])
        call = call_of(1, stereo=True)
        start = time.perf_counter()
        ids = [submit(key, call)[0] for _ in range(concurrent)]
        done = wait(key, ids, timeout_s=1800)
        elapsed = max(t for t, _ in done.values()) - start
        rows.append(
            _row(
                f"{concurrent} calls of {call.duration_s / 60:.1f} min at once",
                call.duration_s * concurrent,
                elapsed,
                concurrent,
                next(iter(done.values()))[1],
            )
        )
        print(rows[-1])
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    return rows


def backlog_run(label: str, root: Path, calls: int, call: CallTruth, level: str) -> str:
    """``calls`` copies of ``call`` submitted at once to the service of ``root``, on the free plan
    (``level`` "compliance": the LLM only for what the rules leave open) or the growth plan ("full":
    the LLM's checks on every call); the throughput."""
    env = base_env(fresh_database())
    env["CALLCOV_WORKER__POLL_INTERVAL_S"] = "0.5"
    # The database is migrated (and the key made) by the code of ``root``: an older checkout cannot
    # run on a database at a newer migration.
    env["PYTHONPATH"] = f"{root / 'platform'}:{root}"
    email, key = credentials(env, mode="test")
    proc = start_service(env, root)
    try:
        if level == "full":
            on_growth_plan(email)
        start = time.time()
        ids = [submit(key, call)[0] for _ in range(calls)]
        # Polled every 5 s so that the polling takes no CPU worth counting; the end is the service's
        # own completed_at (whole seconds), not when the poll saw it.
        done = wait(key, ids, timeout_s=3600, every_s=5)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    elapsed = max(body["metadata"]["completed_at"] for _, body in done.values()) - start
    audio_min = call.duration_s * calls / 60
    outcomes = sorted(
        {
            f"{body['status']} / LLM {(body.get('results') or {}).get('evaluation', {}).get('llm', '?')}"
            for _, body in done.values()
        }
    )
    row = (
        f"| {label} | {level} | {calls} × {call.duration_s / 60:.2f} min | {elapsed:.0f} | {calls * 60 / elapsed:.2f} | "
        f"{audio_min * 60 / elapsed:.2f} | {len(done)}/{calls}: {', '.join(outcomes)} |"
    )
    print(row, flush=True)
    return row


def backlog(calls: int, minutes: float, before_ref: str, levels: list[str]) -> list[str]:
    """The same backlog through the code before the pipelined stages and through this checkout, at
    each analysis level."""
    call = call_of(minutes, stereo=True)
    after = "after (pipelined stages, slots from capacity)"
    if not before_ref:  # --before-ref "": this checkout only
        return [backlog_run(after, ROOT, calls, call, level) for level in levels]
    rows = []
    with tempfile.TemporaryDirectory(prefix="callcov-before-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), before_ref], cwd=ROOT, check=True)
        try:
            for level in levels:
                rows.append(
                    backlog_run(
                        f"before (`{before_ref}`: one job per call, 2 slots)", before, calls, call, level
                    )
                )
                rows.append(backlog_run(after, ROOT, calls, call, level))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=True)
    return rows


def _row(label: str, audio_s: float, elapsed: float, calls: int, body: dict) -> str:
    llm = (body.get("results") or {}).get("sentiment_analysis") or body["results"]["quality"][
        "sentiment_analysis"
    ]
    return (
        f"| {label} | {audio_s / 60:.1f} | {elapsed:.1f} | {elapsed / audio_s:.3f} | "
        f"{calls * 60 / elapsed:.2f} | {body['status']} / LLM {llm.get('status')} |"
    )


def write(section: str, header: list[str], rows: list[str]) -> None:
    begin, end = MARKS[section]
    write_section(begin, end, "\n".join([begin, *header, *rows, end]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 15])
    parser.add_argument("--transcription-minutes", type=float, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrent", type=int, default=3)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-transcription", action="store_true")
    parser.add_argument("--backlog", type=int, default=0, help="calls in the backlog cell (0: skip it)")
    parser.add_argument("--backlog-minutes", type=float, default=1)
    parser.add_argument(
        "--backlog-levels", nargs="+", choices=["compliance", "full"], default=["compliance", "full"]
    )
    parser.add_argument("--before-ref", default=BEFORE_REF, help='"" runs this checkout only')
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stamp = f"Measured {time.strftime('%Y-%m-%d')} by `python bench/pipeline.py` on the 2-core machine."
    if args.backlog:
        header = [
            stamp,
            "",
            "| code | analysis level | backlog | first submit → last completed s | calls/min | "
            "audio min per wall min | outcome |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        rows = backlog(args.backlog, args.backlog_minutes, args.before_ref, args.backlog_levels)
        write("backlog", header, rows)
    if not args.skip_transcription:
        write(
            "transcription",
            [
                stamp,
                "",
                "| model | call | audio s | plain faster-whisper s | pipeline s | ratio | "
                "RTF plain | RTF pipeline |",
                "|---|---|---:|---:|---:|---:|---:|---:|",
            ],
            transcription(args.transcription_minutes, args.repeats),
        )
    if not args.skip_e2e:
        write(
            "e2e",
            [
                stamp,
                "",
                "| submitted | audio min | submit → completed s | s per audio s | calls/min | outcome |",
                "|---|---:|---:|---:|---:|---|",
            ],
            end_to_end(args.minutes, args.concurrent),
        )


if __name__ == "__main__":
    main()
