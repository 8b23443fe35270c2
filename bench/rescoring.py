"""Re-scoring throughput (issue 14): stored transcripts re-scored per minute through the running
service (``callcov-serve``: the dispatcher's ``rescoring`` runner and the ``llm`` app, llama.cpp on the
CPU), with 1 and with 2 LLM replicas, in one run. Both cells give the LLM the same 2 threads in all
(1 replica × 2 threads, 2 replicas × 1 thread), so the ratio is what a second replica buys on this
machine's 2 cores, not more cores.

    python bench/rescoring.py [--calls 8] [--replicas 1 2]

Each cell: a fresh database, an account on the growth plan (the full analysis level: the LLM's
checks run), ``--calls`` completed analyses of a one-minute call seeded with their stored transcript,
then one ``POST /analysis/{id}/rescore`` each, at once; the wall time until the last rescore has
completed. Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingress import base_env, credentials, fresh_database, write_section  # noqa: E402
from llm_cpu import one_minute_call  # noqa: E402
from pipeline import PORT, on_growth_plan, start_service  # noqa: E402
from sqlmodel import select  # noqa: E402

from callcov.config import Settings  # noqa: E402
from callcov.db import create_engine, create_sessionmaker  # noqa: E402
from callcov.kit.time import utcnow  # noqa: E402
from callcov.models import Analysis, User  # noqa: E402
from callcov.scoring.rubric import load_rubric  # noqa: E402
from callcov.scoring.scorer import score  # noqa: E402

MARKS = ("<!-- rescoring:begin -->", "<!-- rescoring:end -->")


def config_for(replicas: int) -> Path:
    """serve.local.yaml with the LLM app at ``replicas`` replicas sharing 2 threads."""
    config = yaml.safe_load((ROOT / "configs" / "serve.local.yaml").read_text())
    for app in config["applications"]:
        if app["name"] == "llm":
            app["args"].update(
                num_replicas=replicas, n_threads=max(1, 2 // replicas), num_cpus=0.75 / replicas
            )
    out = Path(tempfile.mkstemp(suffix=".yaml", prefix="rescoring-")[1])
    out.write_text(yaml.safe_dump(config))
    return out


async def seed(env: dict[str, str], email: str, calls: int) -> list[str]:
    """``calls`` completed test-mode analyses of the one-minute call, scored without the LLM."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("CALLCOV_")})
    settings = Settings()
    transcript = one_minute_call()
    scored = await score(
        transcript, rubric=load_rubric("default"), llm=None, call_direction="inbound", level="full"
    )
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = (await session.exec(select(User).where(User.email == email))).one()
            rows = [
                Analysis(
                    user_id=user.id,
                    livemode=False,
                    status="completed",
                    agent_id="bench",
                    contact_id=f"call-{i}",
                    duration_ms=round(transcript.duration_s * 1000),
                    transcript=transcript.public(),
                    results=scored.results,
                    rubric_id="default",
                    rubric_version=scored.rubric_version,
                    transcriber_model="bench",
                    completed_at=utcnow(),
                )
                for i in range(calls)
            ]
            session.add_all(rows)
            await session.commit()
            return [str(row.id) for row in rows]
    finally:
        await engine.dispose()


def rescore_all(key: str, ids: list[str], timeout_s: float) -> tuple[float, dict[str, int]]:
    base, headers = f"http://127.0.0.1:{PORT}/api/v1", {"X-API-Key": key}
    started = time.perf_counter()
    rescores = []
    for analysis_id in ids:
        r = httpx.post(
            f"{base}/analysis/{analysis_id}/rescore", json={"rubric": "default"}, headers=headers, timeout=60
        )
        r.raise_for_status()
        rescores.append(r.json()["id"])
    pending, outcomes = set(rescores), {}
    deadline = time.time() + timeout_s
    while pending and time.time() < deadline:
        for rescore_id in list(pending):
            body = httpx.get(f"{base}/rescores/{rescore_id}", headers=headers, timeout=30).json()
            if body["status"] != "processing":
                pending.discard(rescore_id)
                outcomes[rescore_id] = body
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    llm: dict[str, int] = {}
    for analysis_id in ids:
        results = httpx.get(f"{base}/analysis/{analysis_id}", headers=headers, timeout=30).json()["results"]
        status = results.get("evaluation", {}).get("llm", "?")
        llm[status] = llm.get(status, 0) + 1
    if pending:
        llm["unfinished"] = len(pending)
    return elapsed, llm


def cell(replicas: int, calls: int) -> tuple[str, float]:
    env = base_env(fresh_database())
    env["CALLCOV_WORKER__POLL_INTERVAL_S"] = "0.5"
    email, key = credentials(env, mode="test")
    ids = asyncio.run(seed(env, email, calls))
    proc = start_service(env, config=config_for(replicas))
    try:
        on_growth_plan(email)
        elapsed, llm = rescore_all(key, ids, timeout_s=3600)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    per_min = calls * 60 / elapsed
    llm_text = ", ".join(f"{n} {status}" for status, n in sorted(llm.items()))
    row = f"| {replicas} | {max(1, 2 // replicas)} | {calls} | {elapsed:.0f} | {per_min:.2f} | {llm_text} |"
    return row, per_min


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows, rates = [], []
    for replicas in args.replicas:
        row, rate = cell(replicas, args.calls)
        rows.append(row)
        rates.append(rate)
        print(row, flush=True)
    ratio = f"{rates[-1] / rates[0]:.2f}×" if len(rates) > 1 and rates[0] else "n/a"
    stamp = (
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/rescoring.py --calls {args.calls}` on the 2-core "
        f"machine: stored one-minute transcripts re-scored with the default rubric through `callcov-serve` "
        f"(CPU LLM, llama.cpp). {args.replicas[-1]} replicas vs {args.replicas[0]}: {ratio} the throughput."
    )
    header = [
        stamp,
        "",
        "| LLM replicas | threads each | transcripts | wall s | transcripts/min | LLM evaluation |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    write_section(*MARKS, "\n".join([MARKS[0], *header, *rows, MARKS[1]]), heading="Re-scoring throughput")


if __name__ == "__main__":
    main()
