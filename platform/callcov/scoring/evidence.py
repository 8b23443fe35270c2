"""Evidence verification: a quote is returned only if it really occurs, case- and punctuation-
insensitively, in one segment of the named speaker that overlaps the quote's [start, end] (widened by
a tolerance). Its times are then fixed to the matched words (interpolated within the segment when the
transcript has no word timestamps) and its text is the transcript's own wording. Everything the LLM
quotes goes through here; an unverifiable quote is dropped, never repaired by guessing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from callcov.inference.transcript import Segment, Transcript
from callcov.scoring.text import SegmentText, Span, norm_pieces, segment_text

MAX_QUOTE_CHARS = 500


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _occurrences(st: SegmentText, needle: list[str]) -> list[Span]:
    tokens = st.tokens
    n = len(needle)
    return [st.token_span(i, i + n - 1) for i in range(len(tokens) - n + 1) if tokens[i : i + n] == needle]


def _find(
    segments: Sequence[Segment],
    texts: Sequence[SegmentText],
    item: Mapping[str, Any],
    tolerance_s: float,
) -> Span | None:
    quote = item.get("quote")
    if not isinstance(quote, str) or len(quote) > MAX_QUOTE_CHARS:
        return None
    needle = norm_pieces(quote)
    if not needle:
        return None
    speaker = item.get("speaker")
    start, end = _number(item.get("start")), _number(item.get("end"))
    if (start is None) != (end is None):
        start = end = start if start is not None else end
    if start is not None and end is not None and end < start:
        start, end = end, start
    spans: list[Span] = []
    for st, seg in zip(texts, segments, strict=True):
        if speaker is not None and seg.speaker != speaker:
            continue
        if start is not None and end is not None:
            if seg.end < start - tolerance_s or seg.start > end + tolerance_s:
                continue
        found = _occurrences(st, needle)
        if not found and st.timed:
            found = _occurrences(segment_text(seg, st.index, use_words=False), needle)
        spans.extend(found)
    if not spans:
        return None
    anchor = start if start is not None else spans[0].start
    return min(spans, key=lambda s: abs(s.start - anchor))


def verify_texts(
    segments: Sequence[Segment],
    texts: Sequence[SegmentText],
    items: Iterable[Mapping[str, Any]],
    *,
    tolerance_s: float = 1.0,
) -> list[dict[str, Any]]:
    """``verify_evidence`` over segments already sorted and normalised (see ``CallView``)."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[int, int, int]] = set()
    for item in items:
        if not isinstance(item, Mapping):
            continue
        span = _find(segments, texts, item, tolerance_s)
        if span is None or (span.segment, span.first, span.last) in seen:
            continue
        seen.add((span.segment, span.first, span.last))
        out.append(span.evidence())
    return out


def verify_evidence(
    transcript: Transcript, items: Iterable[Mapping[str, Any]], *, tolerance_s: float = 1.0
) -> list[dict[str, Any]]:
    """The items ``{quote, start, end, speaker}`` that occur in ``transcript``, with corrected times and
    the transcript's wording; the others are dropped. ``speaker`` is a transcript label ("agent",
    "customer", "A", "B"); None (or absent) matches any speaker, absent times match any time."""
    segments = sorted(transcript.segments, key=lambda s: (s.start, s.end))
    texts = [segment_text(s, i) for i, s in enumerate(segments)]
    return verify_texts(segments, texts, items, tolerance_s=tolerance_s)
