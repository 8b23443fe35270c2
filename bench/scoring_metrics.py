"""What ``bench/scoring_eval.py`` measures: the flag each check raised on a scored call, precision,
recall and F1 against the corpus facts (``bench/scoring_corpus.py``), whether evidence quotes occur
verbatim in the transcript at their times, and the LLM's agreement with the labels.

A check's positive class is the flag it raises: identity missing or late, a disclosure missing, the
purpose missing, a prohibited phrase of the category used, sensitive data of the kind spoken, the
greeting or the closing missing, an interruption.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# Sensitive kinds the facts know; the scorer reports those its rubric lists (``sensitive_data.types``).
SENSITIVE_KINDS = ("credit_card", "ssn", "account_number", "cvv", "expiry")
# The redaction types of the platform, as the facts name them.
TYPE_KINDS = {"credit_card_cvv": "cvv", "credit_card_expiration": "expiry"}
PROHIBITED_CATEGORIES = ("dismissive", "coercive", "misleading", "profanity")
CHECKS = (
    "identity_flagged",
    "call_recording_notice_missing",
    "mini_miranda_missing",
    "purpose_missing",
    *(f"prohibited_{c}" for c in PROHIBITED_CATEGORIES),
    *(f"sensitive_{k}" for k in SENSITIVE_KINDS),
    "greeting_missing",
    "closing_missing",
    "interruption",
)
LLM_LABELS = ("empathy", "resolution", "customer_sentiment_end")


def _evaluated(check: Mapping[str, Any]) -> bool:
    return check.get("status") == "evaluated"


def detected(results: Mapping[str, Any]) -> dict[str, bool | None]:
    """The flag of each check in the scorer's ``results`` (None: the check did not evaluate)."""
    compliance, quality = results["compliance"], results["quality"]
    identity = compliance["identity_verification"]
    disclosures = compliance["mandatory_disclosures"]
    purpose = compliance["purpose_declaration"]
    prohibited = compliance["prohibited_phrases"]
    sensitive = compliance["sensitive_data"]
    structure = quality["call_structure"]
    interruptions = quality["interruptions"]
    missing = set(disclosures.get("missing_disclosures") or [])
    out: dict[str, bool | None] = {
        "identity_flagged": bool(identity["flagged"]) if _evaluated(identity) else None,
        "call_recording_notice_missing": "call_recording_notice" in missing,
        "mini_miranda_missing": "mini_miranda" in missing,
        # not_applicable: the scorer took the call as inbound, where no purpose is required
        "purpose_missing": bool(purpose["flagged"]) if _evaluated(purpose) else False,
        "greeting_missing": bool(quality["greeting"]["flagged"]) if _evaluated(quality["greeting"]) else None,
        "closing_missing": (structure["closing"] is False) if structure.get("closing") is not None else None,
        "interruption": bool(interruptions.get("total")) if _evaluated(interruptions) else None,
    }
    categories = {i["category"] for i in prohibited.get("instances") or []}
    kinds = {TYPE_KINDS.get(i["type"], i["type"]) for i in sensitive.get("instances") or []}
    out.update({f"prohibited_{c}": c in categories for c in PROHIBITED_CATEGORIES})
    out.update({f"sensitive_{k}": k in kinds for k in SENSITIVE_KINDS})
    return out


def llm_answers(results: Mapping[str, Any]) -> dict[str, Any]:
    quality = results["quality"]
    return {
        "empathy": quality["empathy"].get("shown"),
        "resolution": quality["call_structure"].get("resolution"),
        "customer_sentiment_end": quality["sentiment_analysis"].get("customer_sentiment_end"),
    }


def prf(pairs: Iterable[tuple[bool, bool | None]]) -> dict[str, Any]:
    """Counts, precision, recall and F1 of (fact, detected) pairs; a None detection counts as not
        flagged. Precision (recall) is None when nothing was flagged (nothing was to be flagged), F1 when
    neither happened."""
    tp = fp = fn = tn = 0
    for fact, flag in pairs:
        flag = bool(flag)
        tp += fact and flag
        fp += (not fact) and flag
        fn += fact and not flag
        tn += (not fact) and not flag
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"n": tp + fp + fn + tn, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision,
            "recall": recall, "f1": f1}  # fmt: skip


def evidence_items(node: Any) -> Iterator[dict[str, Any]]:
    """Every evidence quote in ``results`` (``evidence`` lists, at any depth)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "evidence" and isinstance(value, list):
                yield from (item for item in value if isinstance(item, Mapping) and "quote" in item)
            else:
                yield from evidence_items(value)
    elif isinstance(node, list):
        for value in node:
            yield from evidence_items(value)


def quote_verbatim(
    segments: list[Mapping[str, Any]], item: Mapping[str, Any], tolerance_s: float = 0.5
) -> bool:
    """The quote occurs character for character in a segment of its speaker that covers its times."""
    for seg in segments:
        if item.get("speaker") not in (None, seg["speaker"]):
            continue
        if seg["end"] < item["start"] - tolerance_s or seg["start"] > item["end"] + tolerance_s:
            continue
        if item["quote"] in seg["text"]:
            return True
    return False


def agreement(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    pairs = list(pairs)
    agreed = sum(1 for label, answer in pairs if label == answer)
    return {"n": len(pairs), "agreed": agreed, "share": agreed / len(pairs) if pairs else None}
