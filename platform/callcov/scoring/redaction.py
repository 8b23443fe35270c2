"""Redaction: the sensitive numbers of a call (``callcov.scoring.pci``) replaced by typed markers in
the transcript, before anything is stored, sent or shown to the LLM.

The words of a number become one word, ``[CREDIT_CARD]`` (``[CREDIT_CARD_CVV]``,
``[CREDIT_CARD_EXPIRATION]``, ``[SSN]``, ``[ACCOUNT_NUMBER]``), that keeps the times of the words it
replaces (the first word's start, the last word's end) and their lowest probability; the segment's
text is rebuilt from its words. ``transcript.redactions`` lists each span with its type, times,
speaker, channel and, for cards, SSNs and accounts, the last four digits.

With ``policies`` (a submission's ``redact_pii_policies``) the PII recognisers of
``callcov.scoring.pii`` add their spans (``[PERSON_NAME]``, ``[PHONE_NUMBER]``, ...), applied the same
way: every recogniser hands over a ``RedactSpan`` (type, word ranges, last four digits).

Redacting a redacted transcript changes nothing, so every stage may call ``redact_transcript``.
``scrub_text`` applies the same detector to free text (what an LLM writes)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from callcov.inference.transcript import Redaction, Segment, Transcript, Word
from callcov.scoring.pci import Hit, find_sensitive
from callcov.scoring.pii import find_pii
from callcov.scoring.spans import RedactSpan
from callcov.scoring.text import SegmentText, segment_text

_TRAILING = re.compile(r"[,.;:!?]+$")
_LONG_NUMBER = re.compile(r"\d(?:[\s\-./]*\d)+")


def _span_of(hit: Hit) -> RedactSpan:
    """A card, SSN or account number as a span: for each segment it touches, its first and last word."""
    out: dict[int, tuple[int, int]] = {}
    for it in hit.items:
        first, last = out.get(it.seg, (it.word, it.last_word))
        out[it.seg] = (min(first, it.word), max(last, it.last_word))
    ranges = tuple((seg, first, last) for seg, (first, last) in sorted(out.items()))
    return RedactSpan(hit.type, ranges, hit.last4)


def _marked(words: list[Word], first: int, last: int, marker: str) -> Word:
    head, tail = words[first], words[last]
    punct = _TRAILING.search(tail.text.rstrip())
    lead = " " if head.text.startswith(" ") else ""
    return Word(
        text=f"{lead}{marker}{punct.group() if punct else ''}",
        start=head.start,
        end=tail.end,
        probability=min(w.probability for w in words[first : last + 1]),
    )


def _join(words: list[Word]) -> str:
    if any(w.text.startswith(" ") for w in words):
        return "".join(w.text for w in words).strip()
    return " ".join(w.text.strip() for w in words)


def _redact_segment(segment: Segment, spans: list[tuple[int, int, str]]) -> Segment:
    """``segment`` with the words ``first..last`` of each span (indices among its non-blank words, as
    in ``segment_text``) replaced by the span's marker."""
    timed = any(w.text.strip() for w in segment.words)
    if timed:
        words = [w for w in segment.words if w.text.strip()]
    else:  # no word times: the words of the text, timed like segment_text interpolates them
        st = segment_text(segment, 0, use_words=False)
        words = [Word(text=w.text, start=w.start, end=w.end, probability=1.0) for w in st.words]
    for first, last, marker in sorted(spans, reverse=True):
        words[first : last + 1] = [_marked(words, first, last, marker)]
    text = _join(words)
    return segment.model_copy(update={"text": text, "words": words if timed else []})


def _spans(texts: list[SegmentText], policies: Iterable[str]) -> list[RedactSpan]:
    """The spans to redact: the sensitive numbers, then the requested PII (an overlap keeps the first)."""
    spans: list[RedactSpan] = []
    for span in [*map(_span_of, find_sensitive(texts)), *find_pii(texts, policies)]:
        if not any(span.overlaps(kept) for kept in spans):
            spans.append(span)
    return spans


def redact_transcript(transcript: Transcript, policies: Iterable[str] = ()) -> Transcript:
    """``transcript`` with every sensitive number, and the PII of ``policies``
    (``callcov.scoring.pii.POLICIES``), replaced by its marker, segments in time order."""
    segments = sorted(transcript.segments, key=lambda s: (s.start, s.end))
    texts = [segment_text(s, i) for i, s in enumerate(segments)]
    spans = _spans(texts, policies)
    if not spans:
        return transcript.model_copy(update={"segments": segments})
    per_segment: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    redactions = list(transcript.redactions)
    for span in spans:
        for seg, first, last in span.ranges:
            per_segment[seg].append((first, last, span.marker))
        (first_seg, first_word, _), (last_seg, _, last_word) = span.ranges[0], span.ranges[-1]
        redactions.append(
            Redaction(
                type=span.type,
                start=round(texts[first_seg].words[first_word].start, 3),
                end=round(texts[last_seg].words[last_word].end, 3),
                speaker=segments[first_seg].speaker,
                channel=segments[first_seg].channel,
                last4=span.last4,
            )
        )
    redacted = [
        _redact_segment(seg, per_segment[i]) if i in per_segment else seg for i, seg in enumerate(segments)
    ]
    redactions.sort(key=lambda r: (r.start, r.end))
    return transcript.model_copy(update={"segments": redacted, "redactions": redactions})


def scrub_text(text: str) -> str:
    """Free text with its sensitive numbers replaced by markers, and any other run of 6 or more digits
    by ``[redacted]``."""
    segment = Segment(speaker="A", text=text, start=0.0, end=1.0, confidence=1.0)
    redacted = redact_transcript(Transcript(language="", duration_s=1.0, segments=[segment]))
    out = redacted.segments[0].text if redacted.redactions else text
    return _LONG_NUMBER.sub(
        lambda m: "[redacted]" if sum(c.isdigit() for c in m.group()) >= 6 else m.group(), out
    )
