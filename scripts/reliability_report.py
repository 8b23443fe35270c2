"""Renders the reliability suite's figures (``var/reliability.json``, written by ``tests/reliability``)
as the Markdown block between the ``figures`` markers of ``docs/reliability.md``.

    .venv/bin/python scripts/reliability_report.py [var/reliability.json] [docs/reliability.md]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def faults(data: dict[str, Any]) -> list[str]:
    lines = [
        "| fault | accepted | completed | lost | rows | usage rows | webhooks delivered | duplicate deliveries "
        "| healthy after (s) | drained after (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in sorted((k.removeprefix("fault:"), v) for k, v in data.items() if k.startswith("fault:")):
        lines.append(
            f"| {name}: {f['detail']} | {f['accepted']} | {f['completed']} | {f['lost']} | {f['analysis_rows']} "
            f"| {f['usage_rows']} | {f['events_delivered']} | {f['duplicate_deliveries']} "
            f"| {f['healthy_after_s']} | {f['drained_s']} |"
        )
    return lines


def load(data: dict[str, Any]) -> list[str]:
    f = data["load"]
    lines = [
        f"{f['clients']} clients for {f['wall_s']} s: {f['responses']} responses ({f['requests_per_s']}/s), "
        f"statuses {f['statuses']}, connection errors {f['connection_errors'] or 'none'}.",
        "",
        "| request | count | p50 (ms) | p99 (ms) | mean (ms) |",
        "|---|---|---|---|---|",
    ]
    for kind, k in f["by_kind"].items():
        lines.append(f"| {kind} | {k['requests']} | {k['p50_ms']} | {k['p99_ms']} | {k['mean_ms']} |")
    return lines


def hostile(data: dict[str, Any]) -> list[str]:
    lines = []
    for lane, run in data.get("schemathesis", {}).items():
        failures = ", ".join(f"{k} ×{v}" for k, v in run["failures"].items()) or "none"
        lines.append(f"- schemathesis ({lane}): {run['operations']} operations, failures: {failures}")
    if "slowloris" in data:
        lines.append(f"- slowloris: {json.dumps(data['slowloris'])}")
    if "huge_headers" in data:
        lines.append(f"- huge headers: {json.dumps(data['huge_headers'])}")
    if "decoder_bombs" in data:
        lines.append(f"- decoder bombs: {json.dumps(data['decoder_bombs'])}")
    if "log_scan" in data:
        lines.append(f"- log scan: {json.dumps(data['log_scan'])}")
    return lines


def render(data: dict[str, Any]) -> str:
    parts = [
        "### Faults",
        "",
        *faults(data),
        "",
        "### Load",
        "",
        *load(data),
        "",
        "### Hostile input and logs",
        "",
    ]
    return "\n".join([*parts, *hostile(data)])


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "reliability.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "reliability.md"
    text = target.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = render(json.loads(source.read_text()))
    target.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


if __name__ == "__main__":
    main()
