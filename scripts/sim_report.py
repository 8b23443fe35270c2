"""Figures, checks, plot and docs of a simulated cluster run (``scripts/cluster_sim.py``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GPU_TYPES = ("gpu_whisper", "gpu_llm")
MARK_BEGIN, MARK_END = "<!-- cluster-sim:begin -->", "<!-- cluster-sim:end -->"


@dataclass
class Sample:
    t: float  # seconds since the run started
    queued: int  # analysis jobs waiting in the jobs table
    running: int  # analysis jobs claimed by a dispatcher
    completed: int  # analyses completed (database)
    replicas: dict[str, int]  # RUNNING replicas per deployment (Serve)
    nodes: dict[str, int]  # alive nodes per node type (Ray)


@dataclass
class Phase:
    name: str
    start: float
    calls: int
    whisper_slots: int  # the phase's cap of whisper replicas x max_ongoing_requests
    caps: dict[str, int]  # max replicas per model deployment
    ids: list[str] = field(default_factory=list)
    end: float | None = None


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    completions: dict[str, float] = field(default_factory=dict)  # analysis id -> completed at (run time)
    killed: dict[str, Any] = field(default_factory=dict)  # node id, type, time, pids, jobs in flight
    scaled_down_at: float | None = None
    per_call: dict[str, dict[str, int]] = field(default_factory=dict)  # id -> usage, events, deliveries
    statuses: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 0
    wall_s: float = 0.0
    llm_status: dict[str, int] = field(default_factory=dict)  # analyses by LLM outcome


def saturated_rate(run: Run, phase: Phase) -> tuple[float | None, tuple[float, float] | None]:
    """Completions per second while the phase's model replicas were all up and at least as many of its
    calls remained as it has whisper slots (so every slot had work): the hardware-bound throughput."""
    caps = phase.caps
    up = [
        s.t
        for s in run.samples
        if s.t >= phase.start and all(s.replicas.get(name, 0) >= cap for name, cap in caps.items())
    ]
    done = sorted(run.completions[i] for i in phase.ids if i in run.completions)
    if not up or len(done) < phase.whisper_slots + 2:
        return None, None
    t0, t1 = up[0], done[len(done) - phase.whisper_slots - 1]
    count = sum(1 for t in done if t0 < t <= t1)
    if t1 - t0 < 3 or count < 2:
        return None, None
    return count / (t1 - t0), (t0, t1)


def node_series(run: Run, node_type: str) -> list[tuple[float, int]]:
    return [(s.t, s.nodes.get(node_type, 0)) for s in run.samples]


def figures(run: Run) -> dict[str, Any]:
    rates = {p.name: saturated_rate(run, p) for p in run.phases}
    one, two = ([rates[p.name][0] for p in run.phases[:2]] + [None, None])[:2]
    changes: dict[str, list[tuple[float, int]]] = {}
    for node_type in ("cpu_worker", *GPU_TYPES):
        points, last = [], None
        for t, n in node_series(run, node_type):
            if n != last:
                points.append((round(t, 1), n))
                last = n
        changes[node_type] = points
    return {
        "calls": sum(p.calls for p in run.phases),
        "rates": {name: rate for name, (rate, _) in rates.items()},
        "windows": {name: window for name, (_, window) in rates.items()},
        "ratio": (two / one) if one and two else None,
        "node_changes": changes,
        "max_nodes": {t: max((n for _, n in node_series(run, t)), default=0) for t in GPU_TYPES},
        "wall_s": run.wall_s,
        "scaled_down_at": run.scaled_down_at,
        "killed": run.killed,
        "max_attempts": run.max_attempts,
        "llm_status": run.llm_status,
    }


def check(run: Run, *, min_ratio: float | None) -> list[str]:
    """The run's failures (empty when it passes)."""
    problems = []
    ids = [i for p in run.phases for i in p.ids]
    not_done = {i: s for i, s in run.statuses.items() if s != "completed"}
    if len(run.statuses) != len(ids) or not_done:
        problems.append(f"{len(not_done)} of {len(ids)} calls not completed: {not_done}")
    for i in ids:
        counts = run.per_call.get(i, {})
        if counts != {"usage": 1, "events": 1, "deliveries": 1}:
            problems.append(f"{i}: usage records, webhook events, distinct deliveries = {counts}")
    first = run.phases[0]
    before = [s for s in run.samples if s.t < first.start]
    for node_type in GPU_TYPES:
        start = max((s.nodes.get(node_type, 0) for s in before), default=0)
        added = [s for s in run.samples if s.t >= first.start and s.nodes.get(node_type, 0) > start]
        if not added or added[0].queued + added[0].running == 0:
            problems.append(f"no {node_type} node was added while calls were waiting (start: {start})")
    if run.scaled_down_at is None:
        problems.append("idle GPU nodes were not removed after the idle timeout")
    if run.killed and run.max_attempts < 2:
        problems.append(f"node {run.killed.get('node_id')} was killed but no job ran twice")
    ratio = figures(run)["ratio"]
    if min_ratio is not None and (ratio is None or ratio < min_ratio):
        problems.append(f"throughput with 2 model nodes / with 1: {ratio} (< {min_ratio})")
    return problems


def plot(run: Run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in run.samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    series: list[tuple[str, dict[str, list[int]]]] = [
        (
            "analysis jobs",
            {"waiting": [s.queued for s in run.samples], "running": [s.running for s in run.samples]},
        ),
        ("replicas (running)", _keyed(run, "replicas", ("whisper", "llm", "dispatcher", "api"))),
        ("nodes (alive)", _keyed(run, "nodes", ("gpu_whisper", "gpu_llm", "cpu_worker", "head_cpu"))),
        ("calls completed", {"completed": [s.completed for s in run.samples]}),
    ]
    for ax, (title, lines) in zip(axes, series, strict=True):
        for label, values in lines.items():
            ax.step(t, values, where="post", label=label)
        ax.set_ylabel(title)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        for phase in run.phases:
            ax.axvline(phase.start, color="grey", linestyle=":")
        if run.killed:
            ax.axvline(run.killed["t"], color="red", linestyle="--")
    axes[0].set_title("Simulated cluster: phases (dotted), gpu_whisper node killed (dashed red)")
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _keyed(run: Run, attr: str, names: tuple[str, ...]) -> dict[str, list[int]]:
    return {name: [getattr(s, attr).get(name, 0) for s in run.samples] for name in names}


def markdown(run: Run, image: str, problems: list[str]) -> str:
    f = figures(run)
    # Phase 3 (the kill) is not a throughput measurement.
    rates = ", ".join(
        f"{n} model node(s) of each kind {rate:.2f} calls/s" if rate else f"{n}: n/a"
        for n, rate in enumerate(list(f["rates"].values())[:2], 1)
    )
    changes = "; ".join(
        f"`{t}` " + ", ".join(f"{n} at {at:.0f} s" for at, n in points)
        for t, points in f["node_changes"].items()
    )
    killed = f["killed"]
    lines = [
        f"![simulated cluster run]({image})",
        "",
        f"- Calls: {f['calls']} ("
        + ", ".join(f"phase {p.name}: {p.calls} calls from {p.start:.0f} s" for p in run.phases)
        + f"); wall time {f['wall_s']:.0f} s.",
        f"- Saturated throughput: {rates}; ratio 2 nodes / 1 node: "
        + (f"**{f['ratio']:.2f}**" if f["ratio"] else "n/a")
        + ".",
        f"- Nodes over time (count from that second on): {changes}.",
        f"- Killed: `{killed.get('type')}` node at {killed.get('t', 0):.0f} s "
        f"({killed.get('in_flight')} analysis jobs running); highest attempts of a job: {f['max_attempts']}."
        if killed
        else "- No node killed.",
        f"- GPU nodes back to their minimum at {f['scaled_down_at']:.0f} s."
        if f["scaled_down_at"]
        else "- GPU nodes not back to their minimum.",
        "- Checks passed: every call completed once, with one usage record, one webhook event and one "
        "delivered event id; nodes added while calls waited and removed when idle; a job ran again after "
        "the kill; the ratio."
        if not problems
        else "- Checks FAILED: " + "; ".join(problems),
    ]
    return "\n".join(lines)


def write_docs(run: Run, doc: Path, image: str, problems: list[str]) -> None:
    text = doc.read_text()
    block = f"{MARK_BEGIN}\n{markdown(run, image, problems)}\n{MARK_END}"
    if MARK_BEGIN in text:
        text = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
