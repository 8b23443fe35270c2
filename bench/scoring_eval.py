"""Scoring evaluation: synthetic calls with known facts (``bench/scoring_corpus.py``) through the real
transcription (faster-whisper base, int8, as the CPU service runs it) and ``callcov.scoring.scorer.score``
(rules only, ``llm=None``); precision, recall and F1 per check, clean and with noise, the share of
evidence quotes found verbatim in the transcript at their times, word error rate per layout, and, on a
subset of calls, the CPU LLM's agreement with the labels for empathy, resolution and sentiment.

    python bench/scoring_eval.py [--calls 40] [--seed 13] [--noise clean 10] [--layouts stereo mono]
                                 [--llm-subset 6] [--rescore-only] [--no-docs]

``--noise``: ``clean`` and/or SNRs in dB. ``--layouts``: one layout renders every call in it; two
alternate by call (call i in layout i mod 2). ``--rescore-only`` re-scores the transcripts of the last
run (``var/scoring_eval/manifest.json``) without audio or Whisper: for detection changes. Writes
``var/scoring_eval/results.json`` and its section of ``docs/benchmarks.md``. Cost on 2 cores: about
8 s of transcription per call and noise level on a first run, nothing on a re-run (cached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from scoring_audio import VAR, TranscriptCache, render  # noqa: E402
from scoring_corpus import CallSpec, corpus  # noqa: E402
from scoring_metrics import (  # noqa: E402
    CHECKS,
    LLM_LABELS,
    TYPE_KINDS,
    agreement,
    detected,
    evidence_items,
    llm_answers,
    prf,
    quote_verbatim,
)
from wer import wer  # noqa: E402

from callcov.inference.transcript import Segment, Transcript, Word  # noqa: E402
from callcov.scoring.redaction import redact_transcript  # noqa: E402
from callcov.scoring.scorer import score  # noqa: E402

MARKS = ("<!-- scoring-eval:begin -->", "<!-- scoring-eval:end -->")
GOALS = {"clean": 0.95, "noisy": 0.90}
# The recording notice on the calls where it was read verbatim or not at all (paraphrases need the LLM).
VERBATIM_NOTICE = "call_recording_notice_missing (no paraphrase)"
EVAL_CHECKS = (*CHECKS[:2], VERBATIM_NOTICE, *CHECKS[2:])


def specs_for(args: argparse.Namespace) -> list[CallSpec]:
    specs = corpus(args.calls, args.seed)
    layouts = [layout == "stereo" for layout in args.layouts]
    return [replace(s, stereo=layouts[i % len(layouts)]) for i, s in enumerate(specs)]


def noise_levels(values: list[str]) -> list[float | None]:
    return [None if v == "clean" else float(v) for v in values]


def transcribe_all(
    specs: list[CallSpec], levels: list[float | None]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Render and transcribe (both cached); one manifest entry per call and noise level."""
    cache = TranscriptCache()
    entries = []
    started = time.perf_counter()
    for spec in specs:
        for level in levels:
            call = render(spec, level)
            key, _ = cache.transcribe(call.path)
            entries.append(
                {
                    "call": spec.id,
                    "noise_db": level,
                    "stereo": spec.stereo,
                    "transcript": key,
                    "turn_starts": [t.start for t in call.turns],
                    "turn_ends": [t.end for t in call.turns],
                    "duration_s": call.duration_s,
                }
            )
            label = "clean" if level is None else f"{level:g} dB"
            print(f"{spec.id} {label}: {key} ({time.perf_counter() - started:.0f} s)", flush=True)
    seconds = time.perf_counter() - started
    print(f"transcripts: {cache.hits} cached, {cache.misses} new, {seconds:.0f} s")
    return entries, {"cached": cache.hits, "new": cache.misses, "seconds": round(seconds)}


def script_transcript(spec: CallSpec, entry: dict[str, Any]) -> Transcript:
    """The script as a perfect transcript: each turn at its rendered times, its words spread evenly
    over them (a word every 0.33 s from the start when the end is not known): what the rules find
    when ASR makes no error."""
    segments = []
    ends = entry.get("turn_ends") or [None] * len(spec.turns)
    for (role, text), start, end in zip(spec.turns, entry["turn_starts"], ends, strict=True):
        tokens = text.split()
        step = (end - start) / len(tokens) if end is not None else 0.33
        words = [
            Word(
                text=token,
                start=round(start + step * i, 2),
                end=round(start + step * (i + 0.9), 2),
                probability=1.0,
            )
            for i, token in enumerate(tokens)
        ]
        channel = (0 if role == "agent" else 1) if spec.stereo else None
        segments.append(
            Segment(speaker=role, channel=channel, text=text, start=words[0].start, end=words[-1].end,  # type: ignore[arg-type]
                    confidence=1.0, words=words)
        )  # fmt: skip
    return Transcript(
        language="en", duration_s=entry["duration_s"], segments=segments, diarization="channels"
    )


def condition(entry: dict[str, Any]) -> str:
    return "clean" if entry["noise_db"] is None else "noisy"


def score_entry(
    spec: CallSpec, entry: dict[str, Any], transcript: Transcript, name: str | None = None
) -> dict[str, Any]:
    """One call's facts, the flags the scorer raised, its evidence quotes checked, and WER."""
    result = asyncio.run(score(transcript, llm=None, call_direction=spec.direction, level="full"))
    flags = detected(result.results)
    facts = spec.facts_after_render(entry["turn_starts"])
    if spec.variants.get("recording_notice") != "paraphrased":  # what rules alone can get right
        facts[VERBATIM_NOTICE] = facts["call_recording_notice_missing"]
    flags[VERBATIM_NOTICE] = flags["call_recording_notice_missing"]
    # Quotes are checked against the transcript the API returns: the redacted one.
    segments = [s.model_dump() for s in redact_transcript(transcript).segments]
    quotes = list(evidence_items(result.results))
    hypothesis = " ".join(s.text for s in transcript.segments)
    return {
        **{k: entry[k] for k in ("call", "noise_db", "stereo", "transcript")},
        "condition": name or condition(entry),
        "facts": facts,
        "detected": flags,
        "variants": spec.variants,
        "quotes": len(quotes),
        "quotes_verbatim": sum(quote_verbatim(segments, q) for q in quotes),
        "misplaced_quotes": [q for q in quotes if not quote_verbatim(segments, q)][:3],
        "wer": wer(spec.script(), hypothesis),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per check and condition (clean, noisy): P/R/F1; evidence share; WER per layout and condition."""
    conditions = {name: [r for r in rows if r["condition"] == name] for name in ("script", "clean", "noisy")}
    checks = {
        check: {
            name: prf((r["facts"][check], r["detected"][check]) for r in subset if check in r["facts"])
            for name, subset in conditions.items()
            if subset
        }
        for check in EVAL_CHECKS
    }
    layouts = {
        f"{name} {layout}": [r for r in subset if r["stereo"] == (layout == "stereo")]
        for name, subset in conditions.items()
        for layout in ("stereo", "mono")
    }
    by_layout = {
        check: {
            name: prf((r["facts"][check], r["detected"][check]) for r in subset if check in r["facts"])["f1"]
            for name, subset in layouts.items()
            if subset
        }
        for check in EVAL_CHECKS
    }
    evidence = {
        name: {
            "quotes": sum(r["quotes"] for r in subset),
            "verbatim": sum(r["quotes_verbatim"] for r in subset),
        }
        for name, subset in conditions.items()
        if subset
    }
    wers: dict[str, dict[str, float]] = {}
    for name, subset in conditions.items():
        if name == "script":
            continue
        for layout in ("stereo", "mono"):
            values = [r["wer"] for r in subset if r["stereo"] == (layout == "stereo")]
            if values:
                wers.setdefault(layout, {})[name] = sum(values) / len(values)
    return {
        "checks": checks,
        "f1_by_layout": by_layout,
        "evidence": evidence,
        "wer": wers,
    }


def run_llm_subset(specs: list[CallSpec], entries: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The CPU LLM (llama.cpp, in process) on the first ``n`` clean calls: agreement with the labels."""
    from scoring_llm import InProcessLLM

    cache = TranscriptCache()
    llm = InProcessLLM()
    by_id = {s.id: s for s in specs}
    pairs: dict[str, list[tuple[Any, Any]]] = {label: [] for label in LLM_LABELS}
    calls = []
    started = time.perf_counter()
    for entry in [e for e in entries if e["noise_db"] is None][:n]:
        spec = by_id[entry["call"]]
        transcript = cache.load(entry["transcript"])
        result = asyncio.run(score(transcript, llm=llm, call_direction=spec.direction, level="full"))
        answers = llm_answers(result.results)
        for label in LLM_LABELS:
            pairs[label].append((spec.llm_labels[label], answers[label]))
        calls.append(
            {"call": spec.id, "labels": spec.llm_labels, "answers": answers, "status": result.llm_status}
        )
        print(f"llm {spec.id}: {result.llm_status} {answers}", flush=True)
    return {
        "model": llm.model,
        "seconds": round(time.perf_counter() - started, 1),
        "agreement": {label: agreement(p) for label, p in pairs.items()},
        "calls": calls,
    }


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _check_row(check: str, by: dict[str, Any], layouts: dict[str, Any], rubric_types: set[str]) -> str:
    cells, short = [_num(by["script"]["f1"]) if "script" in by else ""], []
    for name in ("clean", "noisy"):
        m = by.get(name)
        if m is None:
            cells += ["", "", "", "", ""]
            continue
        split = " / ".join(_num(layouts.get(f"{name} {layout}")) for layout in ("stereo", "mono"))
        counts = f"{m['tp']}/{m['fp']}/{m['fn']}/{m['tn']}"
        cells += [_num(m["precision"]), _num(m["recall"]), _num(m["f1"]), split, counts]
        if m["f1"] is not None and m["f1"] < GOALS[name]:
            short.append(name)
    goal = "short: " + ", ".join(short) if short else "met"
    kind = check.removeprefix("sensitive_")
    if check.startswith("sensitive_") and kind not in {TYPE_KINDS.get(t, t) for t in rubric_types}:
        goal += " (not a type of the rubric)"
    return f"| {check} | {' | '.join(cells)} | {goal} |"


def render_table(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    from callcov.scoring.rubric import load_rubric

    rubric = load_rubric()
    lines = [
        MARKS[0],
        f"Measured {meta['date']} at commit `{meta['commit']}` by `{meta['command']}`: {meta['calls']} calls "
        f"(seed {meta['seed']}, layouts {', '.join(meta['layouts'])}), noise {', '.join(meta['noise'])} "
        f"(white noise, dB SNR); faster-whisper base int8 on 2 cores as the CPU service runs it, then "
        f"`score(..., llm=None)` with rubric {rubric.id} v{rubric.version}. Positive class: the flag the "
        "check raises. Script F1: the script itself scored as a perfect transcript (no ASR errors). "
        "F1 s/m: F1 on the stereo / mono calls. Goals: F1 ≥ 0.95 clean, ≥ 0.90 at 10 dB SNR.",
        "",
        "| check | script F1 | clean P | clean R | clean F1 | clean F1 s/m | clean TP/FP/FN/TN "
        "| noisy P | noisy R | noisy F1 | noisy F1 s/m | noisy TP/FP/FN/TN | goal |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|---|---|",
    ]
    types = set(rubric.sensitive_data.types)
    for check, by in summary["checks"].items():
        lines.append(_check_row(check, by, summary["f1_by_layout"][check], types))
    shares = [
        f"{name} {ev['verbatim']}/{ev['quotes']} ({_num(ev['verbatim'] / ev['quotes'] if ev['quotes'] else None)})"
        for name, ev in summary["evidence"].items()
    ]
    lines += [
        "",
        f"Evidence quotes found verbatim in the transcript at their times (goal 1.00): {', '.join(shares)}.",
        "",
        "| WER vs script | clean | noisy |",
        "|---|---:|---:|",
    ]
    for layout, by in summary["wer"].items():
        lines.append(f"| {layout} | {_num(by.get('clean'))} | {_num(by.get('noisy'))} |")
    cost = meta.get("transcription")
    if cost:
        lines += [
            "",
            f"Rendering and transcription: {cost['seconds']} s ({cost['new']} transcribed, {cost['cached']} cached); "
            "re-scoring from the cached transcripts (`--rescore-only`) takes seconds.",
        ]
    llm = meta.get("llm")
    if llm:
        agreed = ", ".join(f"{k} {v['agreed']}/{v['n']}" for k, v in llm["agreement"].items())
        lines += [
            "",
            f"CPU LLM ({llm['model']}) on {len(llm['calls'])} clean calls, agreement with the labels: "
            f"{agreed} ({llm['seconds']:.0f} s).",
        ]
    lines.append(MARKS[1])
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--noise", nargs="+", default=["clean", "10"], help="clean and/or SNRs in dB")
    parser.add_argument("--layouts", nargs="+", choices=["stereo", "mono"], default=["stereo", "mono"])
    parser.add_argument("--llm-subset", type=int, default=6, help="calls scored with the CPU LLM (0: none)")
    parser.add_argument("--rescore-only", action="store_true", help="re-score the last run's transcripts")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("CALLCOV_SPEECH_CACHE", str(VAR / "speech"))
    manifest_path = VAR / "manifest.json"
    if args.rescore_only:
        manifest = json.loads(manifest_path.read_text())
        args.calls, args.seed, args.layouts, args.noise = (
            manifest[k] for k in ("calls", "seed", "layouts", "noise")
        )
        entries = manifest["entries"]
    specs = specs_for(args)
    if not args.rescore_only:
        entries, cost = transcribe_all(specs, noise_levels(args.noise))
        VAR.mkdir(parents=True, exist_ok=True)
        keep = {k: getattr(args, k) for k in ("calls", "seed", "layouts", "noise")}
        manifest_path.write_text(json.dumps({**keep, "entries": entries}, indent=1))
    by_id = {s.id: s for s in specs}
    cache = TranscriptCache()
    started = time.perf_counter()
    rows = [score_entry(by_id[e["call"]], e, cache.load(e["transcript"])) for e in entries]
    rows += [
        score_entry(by_id[e["call"]], e, script_transcript(by_id[e["call"]], e), "script")
        for e in entries
        if e["noise_db"] is None
    ]
    print(f"scored {len(rows)} transcripts in {time.perf_counter() - started:.1f} s")
    summary = summarise(rows)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    meta = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "commit": commit.stdout.strip(),
        "command": "python bench/scoring_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "calls": args.calls,
        "seed": args.seed,
        "layouts": args.layouts,
        "noise": args.noise,
    }
    if not args.rescore_only:
        meta["transcription"] = cost
        if args.llm_subset > 0:
            meta["llm"] = run_llm_subset(specs, entries, args.llm_subset)
    elif (VAR / "results.json").is_file():  # the costs and the LLM's figures of the last full run
        previous = json.loads((VAR / "results.json").read_text())["meta"]
        meta.update({k: previous[k] for k in ("transcription", "llm") if k in previous})
    table = render_table(summary, meta)
    print(table)
    (VAR / "results.json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1))
    if not args.no_docs:
        from ingress import write_section

        write_section(*MARKS, table, heading="Scoring evaluation (issue 13)")


if __name__ == "__main__":
    main()
