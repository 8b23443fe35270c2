"""What a recogniser hands to redaction: a typed span of a transcript's words, possibly over several
segments (a number read slowly), as (segment, first word, last word) ranges. The word indices are
those of ``callcov.scoring.text.SegmentText.words`` (the segment's non-blank words)."""

from __future__ import annotations

from dataclasses import dataclass

from callcov.scoring.pci import MARKERS as PCI_MARKERS

PII_MARKERS = {
    "person_name": "[PERSON_NAME]",
    "phone_number": "[PHONE_NUMBER]",
    "email_address": "[EMAIL_ADDRESS]",
    "location": "[LOCATION]",
    "date_of_birth": "[DATE_OF_BIRTH]",
}
MARKERS = {**PCI_MARKERS, **PII_MARKERS}
MARKER_WORDS = frozenset(MARKERS.values())


@dataclass(frozen=True)
class RedactSpan:
    type: str
    ranges: tuple[tuple[int, int, int], ...]  # (segment, first word, last word), in time order
    last4: str | None = None

    @property
    def marker(self) -> str:
        return MARKERS[self.type]

    def overlaps(self, other: RedactSpan) -> bool:
        return any(s == t and a <= d and c <= b for s, a, b in self.ranges for t, c, d in other.ranges)


def one_segment(kind: str, seg: int, first: int, last: int) -> RedactSpan:
    return RedactSpan(kind, ((seg, first, last),))


def is_marker(word: str) -> bool:
    """Whether ``word`` is (or starts with) a redaction marker: recognisers never match one."""
    return word.lstrip(" \"'(").startswith("[") and any(m in word for m in MARKER_WORDS)
