"""The capacity model in docs/scaling.md: GPU-hours, nodes and cost for a daily volume of call-hours,
from published throughput figures (each named below) and the shape of CallCov's work per call.

    python bench/capacity_model.py [--call-hours 10000 1000000]

Writes the "capacity-model" block of docs/scaling.md. Replace a figure with a measured one (the GPU
smoke test prints the real-time factor and scoring calls per hour) and run it again.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKS = ("<!-- capacity-model:begin -->", "<!-- capacity-model:end -->")

# Transcription, faster-whisper large-v3-turbo, float16, beam 5, one call at a time: 13 min of audio in
# 19.2 s on an RTX 2080 Ti (faster-whisper issue #1030), a real-time factor of about 41. The
# batched pipeline cut large-v2 from 63 s to 17 s with batch_size 8 (faster-whisper README, RTX 3070 Ti);
# turbo's decoder is small, so we count 2.5x rather than 3.7x. An L4 is taken as equal to those cards.
WHISPER_RTFX_SEQUENTIAL = 13 * 60 / 19.2
WHISPER_BATCH_GAIN = 2.5
# Speech to transcribe per call-hour: two channels of one hour, each party speaking about half the
# time (VAD drops the rest).
SPEECH_HOURS_PER_CALL_HOUR = 1.0
# Scoring, vLLM: 3.8 requests/s for Llama-2-7B on one A10G with 256 prompt and 128 output tokens
# (vLLM's benchmark_throughput, as tracked in nm-vllm's CI), i.e. about 1,460 tokens/s. One scoring call
# is about 2,000 prompt tokens (prompt, schema, a transcript cut at 12,000 characters) and 400 output
# tokens. An L40S is counted as 2.5x an A10G (fp16 tensor throughput 2.9x, memory bandwidth 1.4x).
VLLM_A10G_TOKENS_PER_S = 3.8 * (256 + 128)
L40S_OVER_A10G = 2.5
TOKENS_PER_SCORING = 2_000 + 400
AVERAGE_CALL_MIN = 6.0
# Calls arrive over a working day: the busiest hour carries this multiple of the average hour.
PEAK_FACTOR = 3.0
# On-demand prices (us-east-1, per hour): g6.xlarge (1 x L4), g6e.xlarge (1 x L40S), m6i.xlarge, m6i.2xlarge.
PRICE = {"g6.xlarge": 0.805, "g6e.xlarge": 1.861, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384}
# Nodes that boot, load and idle before the autoscaler removes them: GPU-hours paid but not used.
OVERHEAD = 1.25


@dataclass(frozen=True)
class Plan:
    call_hours: float
    whisper_gpu_h: float
    llm_gpu_h: float
    whisper_peak: int
    llm_peak: int
    cpu_nodes: int
    cost: float


def audio_hours_per_gpu_hour() -> float:
    return WHISPER_RTFX_SEQUENTIAL * WHISPER_BATCH_GAIN


def calls_per_gpu_hour() -> float:
    return VLLM_A10G_TOKENS_PER_S * L40S_OVER_A10G * 3600 / TOKENS_PER_SCORING


def plan(call_hours: float) -> Plan:
    whisper_gpu_h = call_hours * SPEECH_HOURS_PER_CALL_HOUR / audio_hours_per_gpu_hour()
    calls = call_hours * 60 / AVERAGE_CALL_MIN
    llm_gpu_h = calls / calls_per_gpu_hour()
    whisper_peak = math.ceil(whisper_gpu_h / 24 * PEAK_FACTOR)
    llm_peak = max(1, math.ceil(llm_gpu_h / 24 * PEAK_FACTOR))
    # api + dispatcher: one 4-CPU node per ~25 submissions/s at peak (an estimate from the ingress bench:
    # 57 req/s on 2 cores for a read; an upload costs more).
    cpu_nodes = max(1, math.ceil(calls / 86_400 * PEAK_FACTOR / 25))
    cost = (
        whisper_gpu_h * PRICE["g6.xlarge"] * OVERHEAD
        + max(llm_gpu_h * OVERHEAD, 24) * PRICE["g6e.xlarge"]  # min_replicas 1: one L40S all day
        + cpu_nodes * 24 * PRICE["m6i.xlarge"]
        + 24 * PRICE["m6i.2xlarge"]
    )
    return Plan(call_hours, whisper_gpu_h, llm_gpu_h, whisper_peak, llm_peak, cpu_nodes, cost)


def table(volumes: list[float]) -> str:
    rows = [
        f"Transcription: {audio_hours_per_gpu_hour():.0f} audio-hours per L4-hour "
        f"({WHISPER_RTFX_SEQUENTIAL:.0f} one call at a time, x{WHISPER_BATCH_GAIN} batched). "
        f"Scoring: {calls_per_gpu_hour():,.0f} calls per L40S-hour. Calls of {AVERAGE_CALL_MIN:.0f} min, "
        f"peak hour {PEAK_FACTOR:.0f}x the average, {OVERHEAD:.2f}x GPU-hours for boot and idle.",
        "",
        "| call-hours/day | calls/day | whisper L4-h/day | llm L40S-h/day | L4 nodes at peak | "
        "L40S nodes at peak | CPU workers | cost/day | per call-hour |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for volume in volumes:
        p = plan(volume)
        rows.append(
            f"| {volume:,.0f} | {volume * 60 / AVERAGE_CALL_MIN:,.0f} | {p.whisper_gpu_h:,.0f} | {p.llm_gpu_h:,.0f} | "
            f"{p.whisper_peak:,} | {p.llm_peak:,} | {p.cpu_nodes:,} | ${p.cost:,.0f} | ${p.cost / volume:.4f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call-hours", type=float, nargs="+", default=[10_000, 1_000_000])
    args = parser.parse_args()
    block = "\n".join([MARKS[0], table(args.call_hours), MARKS[1]])
    print(block)
    path = ROOT / "docs" / "scaling.md"
    text = path.read_text()
    if MARKS[0] in text:
        text = re.sub(re.escape(MARKS[0]) + ".*?" + re.escape(MARKS[1]), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
