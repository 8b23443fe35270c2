"""Requirement 5: sensitive data spoken by either side: card numbers (13-19 digits, Luhn-checked), SSNs
and account numbers, whether written as digits ("4111 1111-1111 1111") or spoken ("four one one one",
"double one", "oh" inside a number). The reported text is always redacted.

A number is a run of consecutive digit words in one segment. The run is cut into chunks where the
transcript has punctuation or a pause over 1 s; the whole run and every stretch of consecutive chunks
are candidates, longest first:
- credit_card: 13-19 digits passing the Luhn check (never all zeros), or (rubric v2) 12-19 digits
  with a card keyword nearby, checksum or not, since ASR may drop one of the groups;
- ssn: 9 digits written ddd-dd-dddd, or 9 digits with an SSN keyword nearby;
- account_number: 6-17 digits with an account keyword nearby.
"Nearby" is the ``context_words`` words before the number in its segment and the previous segment
(e.g. the agent's question). Evidence quotes the words around the number, never the digits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from callcov.scoring.rubric import SensitiveRules, compile_pattern
from callcov.scoring.text import WORD_SPLIT, SegmentText, normalize
from callcov.scoring.view import CallView, make_check

DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
REPEATS = {"double": 2, "triple": 3}
SOFT_ZERO = {"oh", "o"}  # only a digit inside a number, never at its edges
_NUMERIC = re.compile(r"^[0-9]+$")
_EDGE = ",.;:!?\"'()[]{}"
_PAUSE_S = 1.0


@dataclass(frozen=True)
class _Item:
    digits: str
    word: int
    numeric: bool  # written with digits (keeps its grouping)
    soft: bool
    brk: bool  # punctuation or a pause follows


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _pieces(st: SegmentText, wi: int) -> list[str]:
    return [p.strip(_EDGE).lower() for p in WORD_SPLIT.split(st.words[wi].text) if p.strip(_EDGE)]


def _word_items(st: SegmentText, wi: int, repeat: int = 1) -> list[_Item] | None:
    """The digit items of one word, or None when the word is not (only) digits. ``repeat`` comes from
    a preceding "double"/"triple"."""
    word = st.words[wi]
    pieces = _pieces(st, wi)
    pause = wi + 1 < len(st.words) and st.words[wi + 1].start - word.end > _PAUSE_S
    brk = word.text.rstrip()[-1:] in ",.;:!?" or pause
    items: list[_Item] = []
    for piece in pieces:
        if piece in REPEATS:
            repeat = REPEATS[piece]
            continue
        if _NUMERIC.match(piece):
            items.append(_Item(piece, wi, True, False, False))
        elif piece in DIGIT_WORDS:
            items.append(_Item(DIGIT_WORDS[piece] * repeat, wi, False, piece in SOFT_ZERO, False))
        else:
            return None
        repeat = 1
    if not items or repeat != 1:
        return None
    last = items[-1]
    items[-1] = _Item(last.digits, last.word, last.numeric, last.soft, brk)
    return items


def _runs(st: SegmentText) -> list[list[_Item]]:
    """Maximal runs of digit items, without soft zeros at their edges."""
    runs: list[list[_Item]] = [[]]
    repeat = 1
    for wi in range(len(st.words)):
        pieces = _pieces(st, wi)
        if len(pieces) == 1 and pieces[0] in REPEATS:
            repeat = REPEATS[pieces[0]]
            continue
        items = _word_items(st, wi, repeat)
        repeat = 1
        if items is None:
            runs.append([])
        else:
            runs[-1].extend(items)
    out = []
    for run in runs:
        while run and run[0].soft:
            run = run[1:]
        while run and run[-1].soft:
            run = run[:-1]
        if run:
            out.append(run)
    return out


def _candidates(run: list[_Item]) -> list[tuple[int, int]]:
    """(first, last) item ranges of the whole run and of each stretch of whole chunks, longest first."""
    starts = [0] + [i + 1 for i, it in enumerate(run[:-1]) if it.brk]
    ends = [s - 1 for s in starts[1:]] + [len(run) - 1]
    ranges = {(starts[a], ends[b]) for a in range(len(starts)) for b in range(a, len(ends))}
    length = {r: sum(len(it.digits) for it in run[r[0] : r[1] + 1]) for r in ranges}
    return sorted(ranges, key=lambda r: (-length[r], r[0]))


def _near(context: str, keywords: list[str]) -> bool:
    return any(compile_pattern(normalize(k)).search(context) for k in keywords if normalize(k))


def _classify(items: list[_Item], context: str, rules: SensitiveRules) -> str | None:
    digits = "".join(it.digits for it in items)
    n = len(digits)
    if (
        "credit_card" in rules.types
        and rules.card_min_digits <= n <= rules.card_max_digits
        and luhn_valid(digits)
        and digits.strip("0")
    ):
        return "credit_card"
    if (
        "credit_card" in rules.types
        and rules.card_partial_min_digits is not None
        and rules.card_partial_min_digits <= n <= rules.card_max_digits
        and digits.strip("0")
        and _near(context, rules.card_keywords)
    ):
        return "credit_card"
    if "ssn" in rules.types and n == 9:
        grouped = [len(it.digits) for it in items] == [3, 2, 4] and all(it.numeric for it in items)
        if grouped or _near(context, rules.ssn_keywords):
            return "ssn"
    if (
        "account_number" in rules.types
        and rules.account_min_digits <= n <= rules.account_max_digits
        and _near(context, rules.account_keywords)
    ):
        return "account_number"
    return None


def redact(kind: str, digits: str) -> str:
    """Only the last four digits survive: ``**** **** **** 1111``, ``***-**-6789``, ``******1234``."""
    last4 = digits[-4:]
    masked = "*" * max(len(digits) - 4, 0)
    if kind == "credit_card":
        return " ".join([masked[k : k + 4] for k in range(0, len(masked), 4)] + [last4])
    if kind == "ssn":
        return f"***-**-{last4}"
    return masked + last4


def _context(view: CallView, st: SegmentText, first_word: int) -> str:
    rules = view.rubric.sensitive_data
    before = " ".join(w.text for w in st.words[max(0, first_word - rules.context_words) : first_word])
    previous = view.texts[st.index - 1].text if st.index > 0 else ""
    return f"{previous} {normalize(before)}"


def _has_digits(st: SegmentText, wi: int) -> bool:
    pieces = _pieces(st, wi)
    spoken = any(p in DIGIT_WORDS or p in REPEATS for p in pieces)
    return spoken or any(c.isdigit() for c in st.words[wi].text)


def _lead_in(st: SegmentText, first: int, last: int) -> dict[str, Any] | None:
    """Evidence without digits: up to 6 words before the number, else up to 6 after it."""
    for a, b in ((max(0, first - 6), first - 1), (last + 1, min(len(st.words) - 1, last + 6))):
        if a > b or any(_has_digits(st, wi) for wi in range(a, b + 1)):
            continue
        span = st.span(a, b)
        if span.quote:
            return span.evidence()
    return None


Hit = tuple[dict[str, Any], dict[str, Any] | None, int]


def _segment_instances(view: CallView, st: SegmentText) -> list[Hit]:
    """(instance, evidence or None, segment index) for each number found in the segment."""
    found: list[Hit] = []
    for run in _runs(st):
        taken: list[tuple[int, int]] = []
        for a, b in _candidates(run):
            if any(a <= y and x <= b for x, y in taken):
                continue
            items = run[a : b + 1]
            kind = _classify(items, _context(view, st, items[0].word), view.rubric.sensitive_data)
            if kind is None:
                continue
            taken.append((a, b))
            span = st.span(items[0].word, items[-1].word)
            digits = "".join(it.digits for it in items)
            instance = {
                "type": kind,
                "text": redact(kind, digits),
                "start": round(span.start, 2),
                "end": round(span.end, 2),
                "speaker": st.speaker,
            }
            found.append((instance, _lead_in(st, items[0].word, items[-1].word), st.index))
    return found


def sensitive_data(view: CallView) -> dict[str, Any]:
    """Requirement 5: ``{shared, instances[{type, text (redacted), start, end, speaker}]}``."""
    if not view.segments:
        return make_check("not_applicable", reason="no speech in the call", shared=None, instances=[])
    hits = [hit for st in view.texts for hit in _segment_instances(view, st)]
    hits.sort(key=lambda h: h[0]["start"])
    conf = view.rubric.confidence
    if hits:
        confidence = conf.pattern_found * view.asr_confidence({h[2] for h in hits})
    else:
        confidence = conf.pattern_absent * view.asr_confidence()
    return make_check(
        shared=bool(hits),
        instances=[h[0] for h in hits],
        evidence=[h[1] for h in hits if h[1] is not None],
        confidence=confidence,
    )
