"""One answer from the answers about the parts of a long call (``chunks.py``), in the shape of a single
answer, so the checks read it as they read any answer:
- empathy: shown when any part shows it; quotes from the parts that show it (at most 3).
- sentiment_analysis: agent and customer sentiment by majority over the parts, a tie going to the worse;
  the customer's start from the first part, the end from the last.
- call_structure: opening from the first part, closing from the last, resolution when any part
  resolved the issue or agreed next steps (a middle part may settle it before small talk).
- coaching: recommendations merged, duplicates (same words) dropped, high priority first, up to the
  schema's cap; customer_effort_score the highest of the parts (one hard stretch is effort enough).
- summary: the parts' summaries in order (``join_summaries`` makes one paragraph of them when the
  rubric names no summary prompt, or when that last call gives no valid answer).
- paraphrased_disclosures: the union, one per id (the first part that found it).
Evidence lists are deduplicated (the parts overlap) and capped at the schema's ``maxItems``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from callcov.scoring.text import norm_pieces

SENTIMENT_ORDER = {"negative": 0, "neutral": 1, "positive": 2}
PRIORITY_ORDER = {"high": 0, "medium": 1, "low": 2}
EVIDENCE_CAP = 3


def _evidence(*lists: Any, cap: int = EVIDENCE_CAP) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, float]] = set()
    for items in lists:
        for item in items or []:
            key = (" ".join(norm_pieces(str(item.get("quote", "")))), float(item.get("start", 0)))
            if key not in seen and len(out) < cap:
                seen.add(key)
                out.append(item)
    return out


def _majority(values: list[str]) -> str:
    counts = Counter(values)
    top = max(counts.values())
    return min((v for v in counts if counts[v] == top), key=SENTIMENT_ORDER.__getitem__)


def _empathy(parts: list[dict[str, Any]]) -> dict[str, Any]:
    shown = [p for p in parts if p["shown"]]
    return {"shown": bool(shown), "evidence": _evidence(*(p.get("evidence") for p in shown))}


def _sentiment(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "agent_sentiment": _majority([p["agent_sentiment"] for p in parts]),
        "customer_sentiment": _majority([p["customer_sentiment"] for p in parts]),
        "customer_sentiment_start": parts[0]["customer_sentiment_start"],
        "customer_sentiment_end": parts[-1]["customer_sentiment_end"],
        "evidence": _evidence(parts[0].get("evidence"), parts[-1].get("evidence"),
                              *(p.get("evidence") for p in parts[1:-1])),
    }  # fmt: skip


def _structure(parts: list[dict[str, Any]]) -> dict[str, Any]:
    resolved = [p for p in parts if p["resolution"]]
    return {
        "opening": parts[0]["opening"],
        "resolution": bool(resolved),
        "closing": parts[-1]["closing"],
        "evidence": _evidence(parts[0].get("evidence"), parts[-1].get("evidence"),
                              *(p.get("evidence") for p in resolved)),
    }  # fmt: skip


def _coaching(parts: list[dict[str, Any]], cap: int) -> dict[str, Any]:
    unique: dict[str, dict[str, Any]] = {}
    for p in parts:
        for rec in p["recommendations"]:
            unique.setdefault(" ".join(norm_pieces(rec["recommendation"])), rec)
    ordered = sorted(unique.values(), key=lambda r: PRIORITY_ORDER[r["priority"]])
    return {
        "recommendations": ordered[:cap],
        "customer_effort_score": max(p["customer_effort_score"] for p in parts),
    }


def _disclosures(parts: list[list[dict[str, Any]]], cap: int) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for items in parts:
        for item in items:
            found.setdefault(item["id"], item)
    return list(found.values())[:cap]


def join_summaries(summaries: list[str], max_chars: int) -> str:
    """The parts' summaries as one paragraph, cut at a sentence end within ``max_chars``."""
    text = " ".join(s.strip() for s in summaries if s.strip())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    end = cut.rfind(". ")
    return cut[: end + 1] if end > 0 else cut[: max_chars - 1].rstrip() + "…"


def combine(answers: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    """The answers about the parts (in call order) as one answer to the same ``schema``."""
    props = schema["properties"]
    keys = list(props)
    merged: dict[str, Any] = {}
    parts = {k: [a[k] for a in answers] for k in keys}
    if "empathy" in parts:
        merged["empathy"] = _empathy(parts["empathy"])
    if "sentiment_analysis" in parts:
        merged["sentiment_analysis"] = _sentiment(parts["sentiment_analysis"])
    if "call_structure" in parts:
        merged["call_structure"] = _structure(parts["call_structure"])
    if "coaching" in parts:
        cap = props["coaching"]["properties"]["recommendations"].get("maxItems", 4)
        merged["coaching"] = _coaching(parts["coaching"], cap)
    if "summary" in parts:
        merged["summary"] = join_summaries(parts["summary"], props["summary"].get("maxLength", 700))
    if "paraphrased_disclosures" in parts:
        cap = props["paraphrased_disclosures"].get("maxItems", 4)
        merged["paraphrased_disclosures"] = _disclosures(parts["paraphrased_disclosures"], cap)
    return {k: merged[k] for k in keys}
