"""Normalised, timed text of a segment: what every phrase rule and the evidence check match against.

Normalisation: lower case; hyphens, slashes and dashes split words; apostrophes and other punctuation
are removed ("I'm" -> "im", "4111-1111" -> "4111 1111"). Each normalised token remembers the word it
came from, so a regex match maps back to the transcript's own words and their times. A segment with
word timestamps is timed per word; without them, word times are interpolated over the segment by
character position (approximate)."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from callcov.inference.transcript import Segment

WORD_SPLIT = re.compile(r"[\s\-\u2010-\u2015/]+")
_DROP = re.compile(r"[^\w]+|_")
_EDGE = " \t\n,.;:!?\"'(){}"  # not brackets: a quote may end with a redaction marker


def norm_pieces(text: str) -> list[str]:
    """The normalised tokens of ``text``."""
    out: list[str] = []
    for piece in WORD_SPLIT.split(text.lower()):
        p = _DROP.sub("", piece)
        if p:
            out.append(p)
    return out


def normalize(text: str) -> str:
    """``text`` as the rubric patterns see it."""
    return " ".join(norm_pieces(text))


@dataclass(frozen=True)
class TimedWord:
    text: str  # as in the transcript
    start: float
    end: float
    glued: bool = False  # written onto the previous word ("risk" "-free"): no space before it


@dataclass(frozen=True)
class Span:
    """A run of words of one segment: the quote and its times."""

    segment: int  # index into the call's sorted segments
    speaker: str
    first: int  # word indices, inclusive
    last: int
    start: float
    end: float
    quote: str

    def evidence(self) -> dict[str, object]:
        return {
            "quote": self.quote,
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "speaker": self.speaker,
        }


@dataclass(frozen=True)
class SegmentText:
    index: int
    speaker: str
    start: float
    end: float
    words: tuple[TimedWord, ...]
    token_words: tuple[int, ...]  # for each normalised token, the index of its word
    offsets: tuple[int, ...]  # for each token, its character offset in ``text``
    text: str  # normalised tokens joined by single spaces
    timed: bool  # word times come from the transcript (not interpolated)

    @property
    def tokens(self) -> list[str]:
        return self.text.split(" ") if self.text else []

    def span(self, first: int, last: int) -> Span:
        """The words ``first..last`` as a quote with their times."""
        words = self.words[first : last + 1]
        quote = "".join(w.text if w.glued or i == 0 else f" {w.text}" for i, w in enumerate(words))
        quote = quote.strip(_EDGE)
        return Span(
            self.index, self.speaker, first, last, self.words[first].start, self.words[last].end, quote
        )

    def token_span(self, first_tok: int, last_tok: int) -> Span:
        return self.span(self.token_words[first_tok], self.token_words[last_tok])

    def char_span(self, start: int, end: int) -> Span:
        """The words covering normalised characters ``[start, end)``."""
        first = bisect_right(self.offsets, start) - 1
        last = bisect_right(self.offsets, max(start, end - 1)) - 1
        return self.token_span(max(first, 0), max(last, 0))


def _interpolated(segment: Segment) -> list[TimedWord]:
    words = segment.text.split()
    total = sum(len(w) + 1 for w in words) or 1
    duration = max(segment.end - segment.start, 0.0)
    out: list[TimedWord] = []
    pos = 0
    for w in words:
        start = segment.start + duration * pos / total
        pos += len(w) + 1
        out.append(TimedWord(w, round(start, 3), round(segment.start + duration * (pos - 1) / total, 3)))
    return out


def _aligned(segment: Segment) -> list[TimedWord]:
    """The segment's timed words, each marked ``glued`` when the segment's text writes it onto the
    previous word ("risk" "-free" in "risk-free"), so that quotes read as the text does."""
    out: list[TimedWord] = []
    text, pos = segment.text, 0
    for w in segment.words:
        word = w.text.strip()
        if not word:
            continue
        at = text.find(word, pos)
        glued = bool(out) and at == pos and at > 0 and not text[at - 1].isspace()
        pos = at + len(word) if at >= 0 else pos
        out.append(TimedWord(word, w.start, w.end, glued=glued))
    return out


def segment_text(segment: Segment, index: int, *, use_words: bool = True) -> SegmentText:
    """The normalised, timed text of ``segment`` (word timestamps when present and ``use_words``)."""
    timed = use_words and any(w.text.strip() for w in segment.words)
    if timed:
        words = _aligned(segment)
    else:
        words = _interpolated(segment)
    token_words: list[int] = []
    offsets: list[int] = []
    parts: list[str] = []
    pos = 0
    for wi, word in enumerate(words):
        for piece in norm_pieces(word.text):
            token_words.append(wi)
            offsets.append(pos)
            parts.append(piece)
            pos += len(piece) + 1
    return SegmentText(
        index=index,
        speaker=segment.speaker,
        start=segment.start,
        end=segment.end,
        words=tuple(words),
        token_words=tuple(token_words),
        offsets=tuple(offsets),
        text=" ".join(parts),
        timed=timed,
    )


@dataclass(frozen=True)
class Match:
    span: Span
    groups: dict[str, str]
    text: str  # the normalised text the pattern matched
    approximate: bool = False  # a tolerant match (scoring/fuzzy.py): some words were misheard


def find_matches(st: SegmentText, pattern: re.Pattern[str]) -> Iterator[Match]:
    """Non-overlapping matches of a compiled (normalised-text) pattern in one segment."""
    for m in pattern.finditer(st.text):
        if m.end() <= m.start():
            continue
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        yield Match(st.char_span(m.start(), m.end()), groups, m.group(0))
