"""Deterministic phrase checks on a call: identity (requirement 1), mandatory disclosures (2), purpose (3),
prohibited phrases (4), the greeting, and the rule parts of empathy and call structure.

Decisions:
- identity: ``verified`` says the agent identified at all; ``flagged`` is true when that was missing or
  started after the rubric's window (default 15 s). ``timestamp`` is the start of the statement.
- purpose: counted in agent turns (consecutive agent segments form one turn). Applies to the directions
  the rubric names (default outbound). Inbound calls are not_applicable: the customer states why they
  called, and an inbound "how can I help" is an invitation, not a declaration. With no direction given,
  a purpose statement is looked for; if there is none and an agent turn carries an inbound cue ("thank
  you for calling", "how can I help"), the call is taken as inbound (not_applicable), else it is flagged.
- disclosures: only the agent's speech counts. ``applies_when.directions`` is met by an unknown direction
  (the rule errs on the side of asking for the disclosure).
- prohibited phrases: only the agent's speech counts; overlapping hits in one place are reported once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, Literal

from callcov.scoring.fuzzy import Tolerance, tolerant_matches
from callcov.scoring.rubric import Disclosure, compile_pattern
from callcov.scoring.text import Match, SegmentText, find_matches, normalize
from callcov.scoring.view import CallView, Turn, make_check


def first_match(
    texts: Iterable[SegmentText],
    patterns: list[str],
    stop: set[str] | None = None,
    tol: Tolerance | None = None,
) -> Match | None:
    """The earliest match of any pattern (segments in time order); ``stop`` excludes captured names.
    With ``tol``, a tolerant match is looked for only when no pattern matches exactly anywhere."""
    compiled = [compile_pattern(p) for p in patterns]
    texts = list(texts)
    for finder in (find_matches, _tolerant(tol)):
        if finder is None:
            continue
        for st in texts:
            hits = [m for p in compiled for m in finder(st, p) if not (stop and m.groups.get("name") in stop)]
            if hits:
                return min(hits, key=lambda m: m.span.start)
    return None


def _tolerant(tol: Tolerance | None) -> Callable[[SegmentText, re.Pattern[str]], Iterator[Match]] | None:
    return None if tol is None else partial(tolerant_matches, tol=tol)


def all_matches(
    texts: Iterable[SegmentText], patterns: list[str], tol: Tolerance | None = None
) -> list[Match]:
    """Every match, one per place: a match overlapping an earlier one in the same segment is dropped.
    With ``tol``, tolerant matches are added where no exact match overlaps them."""
    compiled = [compile_pattern(p) for p in patterns]
    out: list[Match] = []
    for st in texts:
        taken: list[tuple[int, int]] = []
        found: list[Match] = []
        for finder in (find_matches, _tolerant(tol)):
            if finder is None:
                continue
            hits = sorted(
                (m for p in compiled for m in finder(st, p)), key=lambda m: (m.span.first, -m.span.last)
            )
            for m in hits:
                if any(m.span.first <= b and a <= m.span.last for a, b in taken):
                    continue
                taken.append((m.span.first, m.span.last))
                found.append(m)
        out.extend(sorted(found, key=lambda m: m.span.first))
    return out


def match_kind(matches: Iterable[Match | None]) -> Literal["exact", "approximate"] | None:
    """A check's ``match``: "approximate" when any of its rule matches was tolerant, None without any."""
    found = [m for m in matches if m is not None]
    if not found:
        return None
    return "approximate" if any(m.approximate for m in found) else "exact"


def _turn_texts(view: CallView, turns: Iterable[Turn]) -> list[SegmentText]:
    return [view.texts[i] for t in turns for i in t.segments]


def _no_agent(**fields: Any) -> dict[str, Any]:
    return make_check("not_applicable", reason="no agent speech in the call", **fields)


def _skip(view: CallView, **fields: Any) -> dict[str, Any] | None:
    """The not_applicable result of a phrase check (no agent speech, or a language the rubric does not
    cover), or None when the check applies."""
    if not view.agent_turns():
        return _no_agent(**fields)
    reason = view.language_reason()
    return None if reason is None else make_check("not_applicable", reason=reason, **fields)


def identity_verification(view: CallView) -> dict[str, Any]:
    """Requirement 1: the agent states their name within ``identity.window_s``."""
    rules = view.rubric.identity
    empty = {"verified": None, "timestamp": None, "flagged": False, "agent_name": None, "match": None}
    if (skipped := _skip(view, **empty)) is not None:
        return skipped
    texts = view.texts_of(view.agent)
    m = first_match(texts, rules.patterns, set(rules.name_stopwords), view.tolerance("identity"))
    if m is None:
        conf = view.rule_confidence([], found=False)
        return make_check(
            verified=False, timestamp=None, flagged=True, agent_name=None, match=None, confidence=conf
        )
    name = m.groups.get("name")
    return make_check(
        verified=True,
        timestamp=round(m.span.start, 2),
        flagged=m.span.start > rules.window_s,
        agent_name=name.capitalize() if name else None,
        match=match_kind([m]),
        evidence=[m.span.evidence()],
        confidence=view.rule_confidence([m.span], found=True, approximate=m.approximate),
    )


def _looks_inbound(view: CallView, turns: list[Turn]) -> bool:
    cues = view.rubric.purpose.inbound_cues
    return bool(cues) and first_match(_turn_texts(view, turns), cues) is not None


def purpose_declaration(view: CallView) -> dict[str, Any]:
    """Requirement 3: the agent states the purpose within the first ``purpose.max_agent_turns`` turns."""
    rules = view.rubric.purpose
    empty = {"disclosed": None, "interaction_number": None, "flagged": False, "match": None}
    if (skipped := _skip(view, **empty)) is not None:
        return skipped
    turns = view.agent_turns()
    if view.direction is not None and view.direction not in rules.applies_to_directions:
        reason = f"{view.direction} call: the customer states the purpose"
        return make_check("not_applicable", reason=reason, **empty)
    tol = view.tolerance("purpose")
    for number, turn in enumerate(turns, start=1):
        m = first_match(_turn_texts(view, [turn]), rules.patterns, tol=tol)
        if m is not None:
            return make_check(
                disclosed=True,
                interaction_number=number,
                flagged=number > rules.max_agent_turns,
                match=match_kind([m]),
                evidence=[m.span.evidence()],
                confidence=view.rule_confidence([m.span], found=True, approximate=m.approximate),
            )
    if view.direction is None and _looks_inbound(view, turns[: rules.max_agent_turns]):
        reason = (
            "no direction given and the agent answered like an inbound call: the customer states the purpose"
        )
        return make_check(
            "not_applicable", reason=reason, confidence=view.rule_confidence([], found=False) * 0.8, **empty
        )
    conf = view.rule_confidence([], found=False)
    return make_check(disclosed=False, interaction_number=None, flagged=True, match=None, confidence=conf)


def disclosure_applies(view: CallView, disclosure: Disclosure) -> bool:
    """Whether ``disclosure`` is required on this call (direction and topic keywords)."""
    when = disclosure.applies_when
    if when is None:
        return True
    if when.directions is not None and view.direction is not None and view.direction not in when.directions:
        return False
    if when.keywords_any:
        keywords = [compile_pattern(normalize(k)) for k in when.keywords_any if normalize(k)]
        return any(k.search(st.text) for st in view.texts for k in keywords)
    return True


def mandatory_disclosures(view: CallView) -> dict[str, Any]:
    """Requirement 2: every applicable disclosure was read by the agent (rule match on its patterns).
    In a language the rubric does not cover the check is not_applicable and ``unchecked_disclosures``
    names the applicable ones (the LLM may still find them: ``judgement.apply_paraphrases``)."""
    applicable = [d for d in view.rubric.disclosures if disclosure_applies(view, d)]
    not_applicable = [d.id for d in view.rubric.disclosures if d not in applicable]
    empty = {"read": None, "matched_disclosures": [], "missing_disclosures": [], "match": None}
    extra: dict[str, Any] = {
        "not_applicable_disclosures": not_applicable,
        "matched_by": {},
        "approximate_disclosures": [],
        "unchecked_disclosures": [],
    }
    if not applicable:
        reason = "no mandatory disclosure applies to this call"
        return make_check("not_applicable", reason=reason, **extra, **empty)
    if not view.agent_turns():
        return _no_agent(**extra, **empty)
    if (reason := view.language_reason()) is not None:
        extra["unchecked_disclosures"] = [d.id for d in applicable]
        return make_check("not_applicable", reason=reason, **extra, **empty)
    tol = view.tolerance("disclosures")
    found = {d.id: first_match(view.texts_of(view.agent), d.patterns, tol=tol) for d in applicable}
    matched = [i for i, m in found.items() if m is not None]
    missing = [i for i, m in found.items() if m is None]
    hits = [m for m in found.values() if m is not None]
    extra["matched_by"] = dict.fromkeys(matched, "rule")
    extra["approximate_disclosures"] = [i for i, m in found.items() if m is not None and m.approximate]
    return make_check(
        read=not missing,
        matched_disclosures=matched,
        missing_disclosures=missing,
        match=match_kind(hits),
        **extra,
        evidence=[m.span.evidence() for m in hits],
        confidence=view.rule_confidence(
            [m.span for m in hits], found=not missing, approximate=any(m.approximate for m in hits)
        ),
    )


def prohibited_phrases(view: CallView) -> dict[str, Any]:
    """Requirement 4: phrases the agent must not use; each instance with its category and times."""
    if (skipped := _skip(view, used=None, instances=[], match=None)) is not None:
        return skipped
    tol = view.tolerance("prohibited_phrases")
    instances: list[dict[str, Any]] = []
    hits: list[Match] = []
    for rule in view.rubric.prohibited_phrases:
        for m in all_matches(view.texts_of(view.agent), [rule.pattern], tol):
            if any(
                h.span.segment == m.span.segment
                and h.span.first <= m.span.last
                and m.span.first <= h.span.last
                for h in hits
            ):
                continue
            hits.append(m)
            ev = m.span.evidence()
            instances.append(
                {"phrase": m.text, "category": rule.category, "text": ev.pop("quote"), **ev,
                 "match": match_kind([m])}
            )  # fmt: skip
    order = sorted(range(len(hits)), key=lambda i: hits[i].span.start)
    return make_check(
        used=bool(instances),
        instances=[instances[i] for i in order],
        match=match_kind(hits),
        evidence=[hits[i].span.evidence() for i in order],
        confidence=view.rule_confidence(
            [h.span for h in hits], found=bool(hits), approximate=any(h.approximate for h in hits)
        ),
    )


def greeting(view: CallView) -> dict[str, Any]:
    """The agent's first turn opens with a greeting, within ``greeting.window_s``."""
    rules = view.rubric.greeting
    if (skipped := _skip(view, proper_greeting=None, timestamp=None, flagged=False, match=None)) is not None:
        return skipped
    turns = view.agent_turns()
    m = first_match(_turn_texts(view, turns[:1]), rules.patterns, tol=view.tolerance("greeting"))
    if m is None or m.span.start > rules.window_s:
        conf = view.rule_confidence([], found=False)
        return make_check(proper_greeting=False, timestamp=None, flagged=True, match=None, confidence=conf)
    return make_check(
        proper_greeting=True,
        timestamp=round(m.span.start, 2),
        flagged=False,
        match=match_kind([m]),
        evidence=[m.span.evidence()],
        confidence=view.rule_confidence([m.span], found=True, approximate=m.approximate),
    )


def closing_matches(view: CallView) -> list[Match]:
    """Closing phrases in the agent's last ``closing.last_agent_turns`` turns."""
    rules = view.rubric.closing
    turns = view.agent_turns()[-rules.last_agent_turns :]
    return all_matches(_turn_texts(view, turns), rules.patterns, view.tolerance("closing"))


def empathy_matches(view: CallView) -> list[Match]:
    """Empathy phrases spoken by the agent."""
    if view.agent is None:
        return []
    return all_matches(view.texts_of(view.agent), view.rubric.empathy.patterns, view.tolerance("empathy"))
