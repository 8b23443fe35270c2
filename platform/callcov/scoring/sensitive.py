"""Requirement 5: sensitive data spoken by either side. The platform's detector
(``callcov.scoring.pci``) finds card numbers, CVVs and expiry dates near a card, SSNs and account
numbers, whether written with digits or spoken, and ``redact_transcript`` replaces them by typed markers
before scoring. This check reports those spans (``transcript.redactions``) of the types the rubric
lists: the text shows at most the last four digits, the evidence quotes the words around the number.

Rubric versions before v3 named their own digit lengths and keywords; since redaction (rubric v3) the
detector is the platform's, for every version, because a stored transcript no longer has the digits
to apply other rules to. Their ``sensitive_data`` settings other than ``types`` are kept only so that
their files still load."""

from __future__ import annotations

from typing import Any

from callcov.inference.transcript import Redaction
from callcov.scoring.digits import is_digit_word
from callcov.scoring.pci import MARKERS, luhn_valid
from callcov.scoring.text import SegmentText
from callcov.scoring.view import CallView, make_check

__all__ = ["luhn_valid", "mask", "sensitive_data"]
_TOLERANCE_S = 0.01


def mask(kind: str, last4: str | None) -> str:
    """What an instance shows: ``**** **** **** 1111``, ``***-**-6789``, ``****1234``, ``***``."""
    if last4 is None:
        return "***"
    if kind == "credit_card":
        return f"**** **** **** {last4}"
    if kind == "ssn":
        return f"***-**-{last4}"
    return f"****{last4}"


def _quotable(st: SegmentText, wi: int) -> bool:
    text = st.words[wi].text
    return not is_digit_word(text) and not any(m in text for m in MARKERS.values())


def _locate(view: CallView, r: Redaction) -> tuple[SegmentText, int] | None:
    """The segment and index of the marker word that starts redaction ``r``."""
    for st in view.texts:
        if st.speaker != r.speaker or not st.start - 1 <= r.start <= st.end + 1:
            continue
        for wi, word in enumerate(st.words):
            if abs(word.start - r.start) <= _TOLERANCE_S and word.text.strip().startswith("["):
                return st, wi
    return None


def _lead_in(st: SegmentText, wi: int) -> dict[str, Any] | None:
    """Evidence without digits: up to 6 words before the marker, else up to 6 after it."""
    for a, b in ((max(0, wi - 6), wi - 1), (wi + 1, min(len(st.words) - 1, wi + 6))):
        if a > b or not all(_quotable(st, k) for k in range(a, b + 1)):
            continue
        span = st.span(a, b)
        if span.quote:
            return span.evidence()
    return None


def sensitive_data(view: CallView) -> dict[str, Any]:
    """Requirement 5: ``{shared, instances[{type, text (masked), start, end, speaker}]}``."""
    if not view.segments:
        return make_check("not_applicable", reason="no speech in the call", shared=None, instances=[])
    types = set(view.rubric.sensitive_data.types)
    found = [r for r in view.transcript.redactions if r.type in types]
    instances, evidence, segments = [], [], set()
    for r in found:
        instances.append(
            {"type": r.type, "text": mask(r.type, r.last4), "start": round(r.start, 2),
             "end": round(r.end, 2), "speaker": r.speaker}
        )  # fmt: skip
        where = _locate(view, r)
        if where is not None:
            segments.add(where[0].index)
            quote = _lead_in(*where)
            if quote is not None:
                evidence.append(quote)
    conf = view.rubric.confidence
    if found:
        confidence = conf.pattern_found * view.asr_confidence(segments or None)
    else:
        confidence = conf.pattern_absent * view.asr_confidence()
    return make_check(shared=bool(found), instances=instances, evidence=evidence, confidence=confidence)
