"""The CPU LLM's scoring throughput: llama.cpp (xllamacpp, the packaged Qwen2.5-Coder-0.5B GGUF) with
1 slot and with ``n_parallel`` slots (continuous batching), on the scoring request of a one-minute call
as the scorer builds it (prompt, schema, max_tokens), several at once.

    python bench/llm_cpu.py [--parallel 1 4] [--requests 4]

Writes its section of docs/benchmarks.md. No service, no network: the engine runs in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingress import write_section  # noqa: E402
from pipeline import SCRIPT  # noqa: E402

from callcov.inference.ports import LLMRequestRejected  # noqa: E402
from callcov.inference.transcript import Segment, Transcript, Word  # noqa: E402
from callcov.scoring.rubric import load_rubric  # noqa: E402
from callcov.scoring.scorer import score  # noqa: E402
from deployments.llm_cpu import LlamaCppArgs, load_engine  # noqa: E402

MARKS = ("<!-- llm-cpu:begin -->", "<!-- llm-cpu:end -->")


def one_minute_call() -> Transcript:
    """The bench call's script, repeated to about 60 s, at 2.5 words per second."""
    segments, t = [], 0.0
    while t < 60:
        for speaker, text in SCRIPT:
            words = []
            for token in text.split():
                words.append(Word(text=token, start=t, end=t + 0.35, probability=0.9))
                t += 0.4
            segments.append(
                Segment(speaker=speaker, text=text, start=words[0].start, end=t, confidence=0.9, words=words)  # type: ignore[arg-type]
            )
            t += 0.6
    return Transcript(language="en", duration_s=t, segments=segments, diarization="channels")


class Recorder:
    """An LLMClient that keeps the request the scorer makes, and refuses it."""

    model = "recorder"

    def __init__(self) -> None:
        self.request: dict[str, Any] = {}

    async def chat_json(
        self, messages: list[Any], schema: dict[str, Any], *, max_tokens: int = 1024
    ) -> dict[str, Any]:
        self.request = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "scoring", "schema": schema, "strict": True},
            },
        }
        raise LLMRequestRejected("recorded", status_code=400)


def scoring_request() -> dict[str, Any]:
    recorder = Recorder()
    asyncio.run(
        score(
            one_minute_call(),
            rubric=load_rubric("default"),
            llm=recorder,
            call_direction="inbound",
            level="full",
        )
    )
    return recorder.request


def run(n_parallel: int, requests: int, request: dict[str, Any], n_ctx_per_slot: int) -> str:
    args = LlamaCppArgs(
        model="qwen2.5-coder-0.5b",
        model_name="bench",
        n_ctx=n_ctx_per_slot * n_parallel,
        n_threads=2,
        n_parallel=n_parallel,
    )
    engine = load_engine(args)
    engine.handle_chat_completions({**request, "model": "bench", "max_tokens": 8})  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=requests) as pool:
        replies = list(
            pool.map(lambda _: engine.handle_chat_completions({**request, "model": "bench"}), range(requests))
        )
    wall = time.perf_counter() - start
    prompt = sum(r["usage"]["prompt_tokens"] for r in replies) / requests
    completion = sum(r["usage"]["completion_tokens"] for r in replies) / requests
    return (
        f"| {n_parallel} | {requests} | {prompt:.0f} | {completion:.0f} | {wall:.1f} | {wall / requests:.1f} | "
        f"{requests * 60 / wall:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--n-ctx-per-slot", type=int, default=4096)
    args = parser.parse_args()
    request = scoring_request()
    rows = []
    for n_parallel in args.parallel:
        rows.append(run(n_parallel, args.requests, request, args.n_ctx_per_slot))
        print(rows[-1], flush=True)
    stamp = f"Measured {time.strftime('%Y-%m-%d')} by `python bench/llm_cpu.py` on the 2-core machine (2 threads)."
    header = [
        stamp,
        "",
        "| n_parallel | requests at once | prompt tokens | completion tokens | wall s | s per call | calls/min |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    write_section(
        *MARKS, "\n".join([MARKS[0], *header, *rows, MARKS[1]]), heading="CPU LLM scoring throughput"
    )


if __name__ == "__main__":
    main()
