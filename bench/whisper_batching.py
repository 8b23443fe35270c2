"""Cross-call batching in the transcription deployment: several calls submitted at once to one
``WhisperTranscriber``, with batching (``batch_size`` 8) and without (0), against plain faster-whisper
transcribing the same calls' channels one after another.

    python bench/whisper_batching.py [--calls 4] [--repeats 1] [--cpu-threads 2]

Writes its section of docs/benchmarks.md. Needs espeak-ng + sox (scripts/system-packages.sh); the
model is Whisper base, assembled from the PyPI packages (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from ingress import write_section  # noqa: E402
from speech import CallTruth, synthesize_call  # noqa: E402

MARKS = ("<!-- whisper-batching:begin -->", "<!-- whisper-batching:end -->")
SCRIPT = [
    ("agent", "Hello, thank you for calling Acme Bank, my name is John. This call may be recorded."),
    ("customer", "Hi John, I am calling because my credit card was charged twice for the same purchase."),
    ("agent", "I am sorry to hear that. Let me look into it. Can you confirm your date of birth?"),
    ("customer", "Sure, it is the fourth of July, nineteen eighty five."),
    ("agent", "Thank you. I can see two charges of forty dollars from the same store on Monday."),
    ("customer", "Yes, that is right. I only bought one thing there."),
]
OPTIONS = {"beam_size": 5, "vad_filter": True, "word_timestamps": True}


def calls_of(count: int) -> list[CallTruth]:
    """``count`` different stereo calls of about 30 s (the same script, shifted by leading silence)."""
    return [synthesize_call(SCRIPT, stereo=True, leading_silence_s=float(i)) for i in range(count)]


def run_plain(model: Any, calls: list[CallTruth]) -> None:
    """Plain faster-whisper: each call's channels, one after another."""
    from faster_whisper import decode_audio

    for call in calls:
        for channel in decode_audio(str(call.path), split_stereo=True):
            list(model.transcribe(channel, **OPTIONS)[0])


def run_transcriber(transcriber: Any, calls: list[CallTruth]) -> None:
    """All calls submitted at once, as the dispatcher's requests reach one replica."""

    async def all_at_once() -> None:
        await asyncio.gather(*(transcriber.transcribe({"audio_path": str(c.path)}) for c in calls))

    asyncio.run(all_at_once())


def batch_summary(stats: dict[str, Any], rounds: int) -> str:
    recent = stats["recent"]
    if not recent:
        return "no batches (sequential decoder)"
    calls = max(b["calls"] for b in recent)
    per_round = stats["batches"] / rounds
    return f"{per_round:.1f} batches a round, {stats['chunks'] / stats['batches']:.1f} chunks each, up to {calls} calls"


def measure(args: argparse.Namespace) -> list[str]:
    """Each mode once per round, rounds in turn (the machine's load drifts), best round per mode."""
    from deployments.whisper import WhisperTranscriber
    from deployments.whisper_decoding import load_model, resolve_model

    calls = calls_of(args.calls)
    audio_s = sum(c.duration_s for c in calls)
    path, _ = resolve_model("base", None)
    model = load_model(path, "cpu", "int8", args.cpu_threads, 1)
    transcribers = {
        size: WhisperTranscriber(
            {"model": "base", "warmup": False, "batch_size": size, **OPTIONS}, model=model
        )
        for size in (0, 8)
    }
    modes: dict[str, Callable[[], None]] = {"plain": lambda: run_plain(model, calls)}
    modes |= {f"batch_size {size}": partial(run_transcriber, t, calls) for size, t in transcribers.items()}
    best = dict.fromkeys(modes, float("inf"))
    for _ in range(args.repeats):
        for name, fn in modes.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
            print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    rows = [row("plain faster-whisper, channels one after another", audio_s, best["plain"], "-")]
    for size, transcriber in transcribers.items():
        label = f"WhisperTranscriber, batch_size {size}, {len(calls)} calls at once"
        stats = transcriber.batch_stats()
        transcriber.close()
        rows.append(row(label, audio_s, best[f"batch_size {size}"], batch_summary(stats, args.repeats)))
    return rows


def row(label: str, audio_s: float, seconds: float, batches: str) -> str:
    line = f"| {label} | {audio_s:.0f} | {seconds:.1f} | {audio_s / seconds:.1f} | {batches} |"
    print(line, flush=True)
    return line


def render(rows: list[str], args: argparse.Namespace) -> str:
    today = datetime.date.today().isoformat()
    return "\n".join(
        [
            MARKS[0],
            f"Measured {today} by `python bench/whisper_batching.py` on the {os.cpu_count()}-core machine "
            f"(Whisper base, int8, {args.cpu_threads} CTranslate2 threads; {args.calls} stereo calls; "
            f"best of {args.repeats} rounds, the modes taking turns; load average {os.getloadavg()[0]:.1f} at the end: the machine is "
            "shared, so compare the rows with each other, not with other sections).",
            "",
            "| mode | audio s | wall s | audio s per wall s | batches |",
            "|---|---:|---:|---:|---|",
            *rows,
            MARKS[1],
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpu-threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    table = render(measure(args), args)
    write_section(*MARKS, table, "Transcription: cross-call batching")


if __name__ == "__main__":
    main()
