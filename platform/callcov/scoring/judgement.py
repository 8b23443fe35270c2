"""Turns the LLM's answer into checks, or falls back to the rule parts when there is no valid answer.

Fallbacks (``LLMOutcome.status`` not "ok"), each with ``reason`` saying why:
- empathy: rule phrase match ("I understand", "I'm sorry to hear"...), source "rule";
- call_structure: opening from the greeting rule, closing from closing phrases, resolution null;
- sentiment_analysis: status "unavailable", confidence 0 (there is no rule part);
- coaching: recommendations derived from flagged rule checks, customer_effort_score null;
- paraphrased disclosures: none (the rule result stands).
LLM evidence always goes through ``verify_texts``; a check whose quotes were all dropped keeps the
LLM's judgement at half confidence."""

from __future__ import annotations

from typing import Any

from callcov.scoring.combine import PRIORITY_ORDER, SENTIMENT_ORDER
from callcov.scoring.evidence import verify_texts
from callcov.scoring.llm_checks import DISCLOSURE_KEY, LLMOutcome
from callcov.scoring.redaction import scrub_text
from callcov.scoring.rules import closing_matches, empathy_matches, match_kind
from callcov.scoring.text import norm_pieces
from callcov.scoring.view import CallView, make_check


def scrub_numbers(text: str) -> str:
    """Free text from the LLM goes through the transcript's redaction (typed markers), and never
    carries another run of 6 or more digits."""
    return scrub_text(text)


def llm_evidence(
    view: CallView, items: Any, *, roles: tuple[str, ...] = ("agent", "customer")
) -> tuple[list[dict[str, Any]], int]:
    """(verified evidence, number of quotes claimed): roles mapped to transcript labels, then verified."""
    claimed = [i for i in items or [] if isinstance(i, dict)]
    mapped = []
    for item in claimed:
        label = view.label_of(str(item.get("speaker"))) if item.get("speaker") in roles else None
        if label is not None:
            mapped.append({**item, "speaker": label})
    return verify_texts(view.segments, view.texts, mapped), len(claimed)


def llm_confidence(view: CallView, claimed: int, kept: int) -> float:
    """The rubric's LLM confidence, lowered when quotes could not be verified."""
    base = view.rubric.llm.confidence * view.role_factor
    if claimed and not kept:
        return base * 0.5
    return base * (0.5 + 0.5 * kept / claimed) if claimed else base


def _paraphrased(
    view: CallView, candidates: list[str], outcome: LLMOutcome
) -> dict[str, list[dict[str, Any]]]:
    """The candidate disclosures the LLM found in other words, each with its verified agent quote."""
    items = outcome.part(DISCLOSURE_KEY)
    if not items or view.agent is None:
        return {}
    minimum = view.rubric.llm.paraphrase_min_words
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        ident = item.get("id")
        if (
            ident not in candidates
            or ident in found
            or len(norm_pieces(str(item.get("quote", "")))) < minimum
        ):
            continue
        evidence = verify_texts(view.segments, view.texts, [{**item, "speaker": view.agent}])
        if evidence:
            found[ident] = evidence
    return found


def _foreign_paraphrases(view: CallView, check: dict[str, Any], outcome: LLMOutcome) -> dict[str, Any]:
    """A call in a language the rubric does not cover: only the LLM can find a disclosure. What it finds
    (with a verified quote) is reported; when it finds every applicable one the check is evaluated, else
    it stays not_applicable: absence is never reported from a language the patterns do not cover."""
    if outcome.status in ("degraded", "not_configured"):
        check["reason"] = f"{check['reason']}; {outcome.reason}: disclosures in other words not checked"
    found = _paraphrased(view, check["unchecked_disclosures"], outcome)
    for ident, evidence in found.items():
        check["unchecked_disclosures"].remove(ident)
        check["matched_disclosures"].append(ident)
        check["matched_by"][ident] = "llm"
        check["evidence"].extend(evidence)
        check["source"] = "llm"
        check["confidence"] = round(llm_confidence(view, 1, 1), 2)
    if found and not check["unchecked_disclosures"]:
        check.update(status="evaluated", read=True, reason=None)
    return check


def apply_paraphrases(view: CallView, check: dict[str, Any], outcome: LLMOutcome) -> dict[str, Any]:
    """Moves disclosures the LLM found in other words (with a verified agent quote) to matched."""
    if check["status"] == "not_applicable" and check["unchecked_disclosures"]:
        return _foreign_paraphrases(view, check, outcome)
    if check["status"] != "evaluated" or not check["missing_disclosures"]:
        return check
    if outcome.status in ("degraded", "not_configured"):
        check["reason"] = f"{outcome.reason}: paraphrases not checked, phrase patterns only"
    for ident, evidence in _paraphrased(view, check["missing_disclosures"], outcome).items():
        check["missing_disclosures"].remove(ident)
        check["matched_disclosures"].append(ident)
        check["matched_by"][ident] = "llm"
        check["evidence"].extend(evidence)
        check["source"] = "llm"
    if check["source"] == "llm":
        check["read"] = not check["missing_disclosures"]
        check["confidence"] = round(min(check["confidence"], llm_confidence(view, 1, 1)), 2)
    return check


def sentiment_analysis(view: CallView, outcome: LLMOutcome) -> dict[str, Any]:
    part = outcome.part("sentiment_analysis")
    if part is None:
        return make_check(
            "unavailable", agent_sentiment=None, customer_sentiment=None, customer_sentiment_start=None,
            customer_sentiment_end=None, sentiment_shift=None, source="llm", reason=outcome.reason,
        )  # fmt: skip
    start, end = part["customer_sentiment_start"], part["customer_sentiment_end"]
    delta = SENTIMENT_ORDER[end] - SENTIMENT_ORDER[start]
    evidence, claimed = llm_evidence(view, part.get("evidence"))
    return make_check(
        agent_sentiment=part["agent_sentiment"],
        customer_sentiment=part["customer_sentiment"],
        customer_sentiment_start=start,
        customer_sentiment_end=end,
        sentiment_shift="improved" if delta > 0 else "worsened" if delta < 0 else "unchanged",
        evidence=evidence,
        confidence=llm_confidence(view, claimed, len(evidence)),
        source="llm",
    )


def empathy(view: CallView, outcome: LLMOutcome) -> dict[str, Any]:
    """The LLM's judgement; without one, the rule phrase match (not_applicable in a language the rubric
    does not cover). Rule quotes merged into the LLM's evidence are exact matches only."""
    if not view.agent_turns():
        return make_check("not_applicable", shown=None, reason="no agent speech in the call")
    language = view.language_reason()
    matches = [] if language else empathy_matches(view)
    part = outcome.part("empathy")
    if part is None:
        if language:
            return make_check(
                "not_applicable", shown=None, match=None, reason=f"{outcome.reason}; {language}"
            )
        spans = [m.span for m in matches]
        approximate = any(m.approximate for m in matches[:5])
        return make_check(
            shown=bool(spans),
            match=match_kind(matches[:5]),
            evidence=[s.evidence() for s in spans[:5]],
            confidence=view.rule_confidence(spans, found=bool(spans), approximate=approximate) * 0.8,
            reason=f"{outcome.reason}: rule-based phrase match only",
        )
    rule_spans = [m.span for m in matches if not m.approximate]
    evidence, claimed = llm_evidence(view, part.get("evidence"), roles=("agent",))
    kept = len(evidence)
    if part["shown"]:
        known = {(e["start"], e["quote"]) for e in evidence}
        evidence += [e for s in rule_spans if (e := s.evidence()) and (e["start"], e["quote"]) not in known]
    else:
        evidence = []
    return make_check(
        shown=bool(part["shown"]),
        evidence=evidence[:5],
        confidence=llm_confidence(view, claimed, kept),
        source="llm",
    )


def _rule_structure(view: CallView, outcome: LLMOutcome, greeting: dict[str, Any]) -> dict[str, Any]:
    """call_structure without the LLM: opening from the greeting rule, closing from closing phrases."""
    fields = {"opening": None, "resolution": None, "closing": None, "flagged": False}
    if (language := view.language_reason()) is not None:
        return make_check("not_applicable", reason=f"{outcome.reason}; {language}", match=None, **fields)
    closing = closing_matches(view)
    opening = bool(greeting.get("proper_greeting"))
    spans = [m.span for m in closing[:2]]
    approximate = any(m.approximate for m in closing[:2]) or greeting.get("match") == "approximate"
    return make_check(
        opening=opening,
        resolution=None,
        closing=bool(closing),
        flagged=not (opening and closing),
        match=("approximate" if approximate else "exact") if opening or closing else None,
        evidence=[*greeting.get("evidence", []), *(s.evidence() for s in spans)],
        confidence=view.rule_confidence(spans, found=bool(closing), approximate=approximate) * 0.8,
        reason=f"{outcome.reason}: opening and closing from rules, resolution not judged",
    )


def call_structure(view: CallView, outcome: LLMOutcome, greeting: dict[str, Any]) -> dict[str, Any]:
    if not view.agent_turns():
        fields = {"opening": None, "resolution": None, "closing": None, "flagged": False}
        return make_check("not_applicable", reason="no agent speech in the call", **fields)
    part = outcome.part("call_structure")
    if part is None:
        return _rule_structure(view, outcome, greeting)
    evidence, claimed = llm_evidence(view, part.get("evidence"))
    flags = (bool(part["opening"]), bool(part["resolution"]), bool(part["closing"]))
    return make_check(
        opening=flags[0],
        resolution=flags[1],
        closing=flags[2],
        flagged=not all(flags),
        evidence=evidence,
        confidence=llm_confidence(view, claimed, len(evidence)),
        source="llm",
    )


def _violated(check: dict[str, Any] | None) -> bool:
    if not check or check.get("status") != "evaluated":
        return False
    return bool(
        check.get("flagged") or check.get("read") is False or check.get("used") or check.get("shared")
    )


def _recommendations(view: CallView, sections: dict[str, dict[str, Any]], part: Any) -> list[dict[str, Any]]:
    rules = view.rubric.coaching
    recs: list[dict[str, Any]] = []
    for name, rec in rules.rule_recommendations.items():
        check = sections["compliance"].get(name) or sections["quality"].get(name)
        if _violated(check):
            recs.append({**rec.model_dump(), "source": "rule"})
    for item in (part or {}).get("recommendations", []):
        recs.append(
            {**item, "recommendation": scrub_numbers(item["recommendation"].strip()), "source": "llm"}
        )
    unique: dict[str, dict[str, Any]] = {}
    for rec in recs:
        unique.setdefault(" ".join(norm_pieces(rec["recommendation"])), rec)
    ordered = sorted(unique.values(), key=lambda r: PRIORITY_ORDER[r["priority"]])
    return ordered[: rules.max_recommendations]


def coaching(view: CallView, outcome: LLMOutcome, sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{recommendations[{priority, category, recommendation, source}], customer_effort_score}``."""
    part = outcome.part("coaching")
    recs = _recommendations(view, sections, part)
    if part is None:
        return make_check(
            recommendations=recs,
            customer_effort_score=None,
            confidence=view.rubric.confidence.pattern_found * view.role_factor,
            reason=f"{outcome.reason}: recommendations from the rule checks only, no effort score",
        )
    return make_check(
        recommendations=recs,
        customer_effort_score=int(part["customer_effort_score"]),
        confidence=llm_confidence(view, 0, 0),
        source="llm",
    )
