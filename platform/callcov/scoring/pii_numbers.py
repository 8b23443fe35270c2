"""PII that is read out as numbers (``callcov.scoring.pii``): phone numbers and dates of birth.

- ``phone_number``: a run of digit words (``callcov.scoring.digits``: written or spoken, across
  segments) of 7-11 digits whose nearest keyword before it is a phone keyword ("phone", "mobile",
  "call me", "reach me", ...), or grouped 3-3-4 (1-3-3-4) without a keyword, unless a keyword of
  another number (order, reference, account, card, ...) is nearer. Never a number followed by an
  amount word. A card, SSN or account number is redacted as such first.
- ``date_of_birth``: a date within the words after "date of birth", "born", "birthday", "DOB" (in the
  same segment or as the answer in the next one): month names, ordinals, day numbers and years, spoken
  ("the fourth of July, nineteen eighty five") or written ("04/07/1985", "July 4th 1985"). It holds a
  month or a year; a bare "second" or a day number is not a date."""

from __future__ import annotations

import re

from callcov.scoring.digits import Item, digit_runs, pieces_of
from callcov.scoring.pci import AMOUNT_WORDS
from callcov.scoring.spans import RedactSpan, one_segment
from callcov.scoring.text import SegmentText, normalize

CONTEXT_WORDS = 12
PHONE_KEYWORDS = (
    "phone", "telephone", "mobile", "cell", "cellphone", "landline", "call me", "call you", "call back",
    "callback", "reach me", "reach you", "text me", "contact number", "phone number", "number to reach",
    "whatsapp", "fax",
)  # fmt: skip
OTHER_NUMBER_KEYWORDS = (
    "order", "reference", "ref", "confirmation", "tracking", "invoice", "case", "ticket", "claim",
    "policy", "member", "id", "account", "acct", "routing", "card", "credit", "debit", "social", "ssn",
    "zip", "postal", "extension", "pin", "code", "serial", "model",
)  # fmt: skip
PHONE_GROUPS = ([3, 3, 4], [1, 3, 3, 4], [3, 4])


def _nearest_is_phone(context: list[str]) -> bool | None:
    """True/False when the keyword nearest the end of ``context`` is a phone / another number's one."""
    best: tuple[int, bool] | None = None
    for words, phone in ((PHONE_KEYWORDS, True), (OTHER_NUMBER_KEYWORDS, False)):
        for kw in words:
            needle = kw.split(" ")
            for end in range(len(context), len(needle) - 1, -1):
                if context[end - len(needle) : end] == needle:
                    if best is None or end > best[0]:
                        best = (end, phone)
                    break
    return best[1] if best else None


def _context(texts: list[SegmentText], first: Item) -> list[str]:
    st = texts[first.seg]
    before = " ".join(w.text for w in st.words[max(0, first.word - CONTEXT_WORDS) : first.word])
    previous = texts[first.seg - 1].text if first.seg > 0 else ""
    return normalize(f"{previous} {before}").split()


def _groups(run: list[Item]) -> list[int]:
    """Digit counts of the run's groups: written numbers as written, spoken ones between pauses."""
    if all(it.numeric for it in run):
        return [len(it.digits) for it in run]
    groups, size = [], 0
    for it in run:
        size += len(it.digits)
        if it.brk:
            groups.append(size)
            size = 0
    return [*groups, size] if size else groups


def _followed_by_amount(texts: list[SegmentText], last: Item) -> bool:
    st = texts[last.seg]
    after = [p for w in st.words[last.last_word + 1 : last.last_word + 3] for p in pieces_of(w.text)]
    return bool(after) and after[0] in AMOUNT_WORDS


def _span_of(kind: str, run: list[Item]) -> RedactSpan:
    ranges: dict[int, tuple[int, int]] = {}
    for it in run:
        first, last = ranges.get(it.seg, (it.word, it.last_word))
        ranges[it.seg] = (min(first, it.word), max(last, it.last_word))
    return RedactSpan(kind, tuple((seg, a, b) for seg, (a, b) in sorted(ranges.items())))


def find_phone_numbers(texts: list[SegmentText]) -> list[RedactSpan]:
    spans = []
    for run in digit_runs(texts):
        n = sum(len(it.digits) for it in run)
        if not 7 <= n <= 11 or _followed_by_amount(texts, run[-1]):
            continue
        nearest = _nearest_is_phone(_context(texts, run[0]))
        if nearest is True or (nearest is None and _groups(run) in PHONE_GROUPS and n >= 10):
            spans.append(_span_of("phone_number", _with_leading_zero(texts, run)))
    return spans


def _with_leading_zero(texts: list[SegmentText], run: list[Item]) -> list[Item]:
    """The run with the "oh" or "zero" right before it, which a run never starts with ("oh seven
    seven ..."): a phone number's leading 0."""
    first = run[0]
    if first.word > 0 and pieces_of(texts[first.seg].words[first.word - 1].text) in (["oh"], ["o"], ["zero"]):
        return [Item("0", first.seg, first.word - 1, first.word - 1, False, True), *run]
    return run


# -- dates of birth ----------------------------------------------------------------------------

DOB_KEYWORDS = (
    ("date", "of", "birth"),
    ("born",),
    ("birthday",),
    ("dob",),
    ("d", "o", "b"),
    ("birth", "date"),
)
MONTHS = frozenset(
    """january february march april may june july august september october november december jan feb mar
    apr jun jul aug sep sept oct nov dec""".split()
)
ORDINALS = frozenset(
    """first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth
    fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth""".split()
)
DATE_NUMBERS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
    seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand
    oh zero""".split()
)
CONNECT = frozenset({"the", "of", "and", "in"})
_NUMERIC_DAY = re.compile(r"^\d{1,2}(st|nd|rd|th)?$")
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
WINDOW = 10  # the date starts within this many tokens after the keyword


def _date_token(token: str) -> bool:
    return (
        token in MONTHS
        or token in ORDINALS
        or token in DATE_NUMBERS
        or bool(_NUMERIC_DAY.match(token) or _YEAR.match(token))
    )


def _is_date(tokens: list[str]) -> bool:
    spoken_year = any(t in {"nineteen", "thousand"} for t in tokens) and any(
        t in DATE_NUMBERS - {"nineteen", "thousand"} for t in tokens
    )
    numeric = [t for t in tokens if t.isdigit()]
    numeric_date = len(numeric) >= 3 or (len(numeric) == 2 and any(t in MONTHS for t in tokens))
    # "may" and "march" are also words: a month alone must be one of the others.
    month = any(t in MONTHS - {"may", "march"} for t in tokens) or (
        any(t in MONTHS for t in tokens) and len([t for t in tokens if t not in CONNECT]) > 1
    )
    return month or any(_YEAR.match(t) for t in tokens) or spoken_year or numeric_date


def _date_after(st: SegmentText, start: int) -> tuple[int, int] | None:
    """(first, last) token of the first date within ``WINDOW`` tokens from ``start``."""
    tokens = st.tokens
    for i in range(start, min(len(tokens), start + WINDOW)):
        if not _date_token(tokens[i]) or tokens[i] in {"oh", "zero"}:
            continue
        j = i
        while j + 1 < len(tokens) and (
            _date_token(tokens[j + 1])
            or (tokens[j + 1] in CONNECT and j + 2 < len(tokens) and _date_token(tokens[j + 2]))
        ):
            j += 1
        if _is_date(tokens[i : j + 1]):
            return i, j
        return None
    return None


def _keyword_ends(st: SegmentText) -> list[int]:
    tokens = st.tokens
    return [
        i + len(kw) for i in range(len(tokens)) for kw in DOB_KEYWORDS if tuple(tokens[i : i + len(kw)]) == kw
    ]


def find_dates_of_birth(texts: list[SegmentText]) -> list[RedactSpan]:
    spans = []
    asked = False  # the previous segment ends with a date-of-birth keyword (the question)
    for st in texts:
        starts = _keyword_ends(st)
        if asked:
            starts = [0, *starts]
        taken = -1
        for start in starts:
            found = _date_after(st, max(start, taken + 1))
            if found is not None:
                spans.append(
                    one_segment("date_of_birth", st.index, st.token_words[found[0]], st.token_words[found[1]])
                )
                taken = found[1]
        ends = _keyword_ends(st)
        asked = bool(ends) and len(st.tokens) - max(ends) <= 6 and not _spans_in(spans, st.index)
    return spans


def _spans_in(spans: list[RedactSpan], seg: int) -> bool:
    return any(r[0] == seg for s in spans for r in s.ranges)
