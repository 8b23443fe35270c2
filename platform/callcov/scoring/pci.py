"""Which spoken numbers are sensitive: card numbers, CVVs and expiry dates near a card, SSNs and bank
account numbers. One detector for the whole platform, whatever the rubric: what it finds is redacted
from every stored copy (``callcov.scoring.redaction``), and the rubric's ``sensitive_data`` check
reports it.

ASR rarely writes a number exactly as it was read: it inserts, drops and merges digits, spells them
out, and splits a slow reading over segments (``callcov.scoring.digits``). So the rules work on runs of
digits with the words around them, not on exact lengths:

- The context is the ``CONTEXT_WORDS`` words before the number, and the previous segment (the agent's
  question). The keyword class nearest to the number decides: card, CVV, expiry, SSN, account, or a
  look-alike (order, reference, confirmation, tracking, phone, ...).
- After a card keyword: 12-23 digits are a card, Luhn or not (ASR dropped or inserted digits).
- After a CVV keyword: 3-4 digits. After an expiry keyword: 2-6 digits. When both were asked for
  ("the expiry date and the security code?"), the answer's first number is the expiry if it reads as
  a month and a year ("329", "12 27"), and a later one of 3-4 digits the CVV.
- 9 digits written ddd-dd-dddd are an SSN anywhere. After an SSN keyword: 7-11 digits.
- After an account keyword: 6-20 digits.
- Anywhere but right after a look-alike keyword: 13-19 digits that pass the Luhn check.
- Then, on what is left, anywhere but after a look-alike keyword: 14-23 digits (a card that ASR
  garbled) are an unverified card.
- Never: a number followed by an amount word ("dollars", "percent"); 15-19 Luhn-valid digits after a
  look-alike keyword are still a card (an order number that long and checksum-valid is rare; a card read
  out after "reference" is not).
"""

from __future__ import annotations

from dataclasses import dataclass

from callcov.scoring.digits import Item, digit_runs, is_digit_word, pieces_of
from callcov.scoring.text import SegmentText, normalize

CONTEXT_WORDS = 12
KEYWORDS: dict[str, tuple[str, ...]] = {
    "card": (
        "card", "credit", "debit", "visa", "mastercard", "amex", "american express", "discover",
        "long number", "front of the card",
    ),
    "cvv": (
        "cvv", "cvc", "cv2", "cvv2", "security code", "three digit code", "3 digit code", "card code",
        "code on the back", "back of the card", "verification code",
    ),
    "expiry": ("expiry", "expiration", "expires", "expire", "expired", "expiring", "exp", "valid through", "valid thru", "good through"),
    "ssn": ("social security", "ssn", "social"),
    "account": ("account", "acct", "routing", "iban", "sort code", "bank number"),
    "lookalike": (
        "order", "reference", "ref", "confirmation", "tracking", "invoice", "case", "ticket", "claim",
        "phone", "telephone", "mobile", "cell", "call me", "call you", "call back", "callback",
        "reach me", "extension", "zip", "postal", "policy", "member", "id",
    ),
}  # fmt: skip
AMOUNT_WORDS = {
    "dollars",
    "dollar",
    "cents",
    "percent",
    "bucks",
    "usd",
    "euros",
    "pounds",
    "hundred",
    "thousand",
}
MARKERS = {
    "credit_card": "[CREDIT_CARD]",
    "credit_card_cvv": "[CREDIT_CARD_CVV]",
    "credit_card_expiration": "[CREDIT_CARD_EXPIRATION]",
    "ssn": "[SSN]",
    "account_number": "[ACCOUNT_NUMBER]",
}
KEEP_LAST4 = {"credit_card", "ssn", "account_number"}


@dataclass(frozen=True)
class Hit:
    type: str
    items: tuple[Item, ...]

    @property
    def digits(self) -> str:
        return "".join(it.digits for it in self.items)

    @property
    def last4(self) -> str | None:
        return self.digits[-4:] if self.type in KEEP_LAST4 else None


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _classes(context: list[str]) -> list[str]:
    """The keyword classes found in ``context`` (normalised tokens), the nearest to its end first."""
    last: dict[str, int] = {}
    for cls, words in KEYWORDS.items():
        for kw in words:
            needle = kw.split(" ")
            n = len(needle)
            for end in range(len(context), n - 1, -1):
                if context[end - n : end] == needle:
                    last[cls] = max(last.get(cls, 0), end)
                    break
    return sorted(last, key=lambda cls: -last[cls])


def _month_year(items: list[Item]) -> bool:
    """A month and a year as ASR writes them: two items ("four twenty seven", "10 30"), or one number:
    MYY ("329"), MMYY ("1227"), MMYYYY ("042027")."""
    parts = [it.digits for it in items]
    if len(parts) == 2:
        return 1 <= int(parts[0]) <= 12 and len(parts[1]) in (2, 4)
    d = "".join(parts)
    if len(d) == 3:
        return d[0] != "0"
    return len(d) in (4, 6) and 1 <= int(d[:2]) <= 12 and (len(d) == 4 or d[2:4] == "20")


def _card_detail(items: list[Item], classes: list[str], first: bool) -> str | None:
    """A CVV or an expiry date, when the nearest keyword asks for one. When both were asked for ("the
    expiry date and the security code?"), the answer's first number, if it is a month and a year, is
    the expiry, and a later one of 3-4 digits the CVV. ``first``: no digits before it in its segment."""
    n = sum(len(it.digits) for it in items)
    if classes[0] not in ("cvv", "expiry"):
        return None
    if "cvv" in classes and "expiry" in classes:
        if first and _month_year(items):
            return "credit_card_expiration"
        if not first and 3 <= n <= 4:
            return "credit_card_cvv"
    if classes[0] == "cvv":
        return "credit_card_cvv" if 3 <= n <= 4 else None
    return "credit_card_expiration" if 2 <= n <= 6 else None


def _context(texts: list[SegmentText], first: Item) -> list[str]:
    st = texts[first.seg]
    before = " ".join(w.text for w in st.words[max(0, first.word - CONTEXT_WORDS) : first.word])
    previous = texts[first.seg - 1].text if first.seg > 0 else ""
    return normalize(f"{previous} {before}").split()


def _followed_by_amount(texts: list[SegmentText], last: Item) -> bool:
    st = texts[last.seg]
    after = [p for w in st.words[last.last_word + 1 : last.last_word + 3] for p in pieces_of(w.text)]
    return bool(after) and after[0] in AMOUNT_WORDS


def _classify(items: list[Item], classes: list[str], *, strict: bool, first: bool) -> str | None:
    cls = classes[0] if classes else None
    digits = "".join(it.digits for it in items)
    n = len(digits)
    if not digits.strip("0"):
        return None
    luhn = 13 <= n <= 19 and luhn_valid(digits)
    if not strict:
        return "credit_card" if cls != "lookalike" and 14 <= n <= 23 else None
    grouped = [len(it.digits) for it in items] == [3, 2, 4] and all(it.numeric for it in items)
    if grouped and cls != "lookalike":
        return "ssn"
    if cls == "card" and 12 <= n <= 23:
        return "credit_card"
    detail = _card_detail(items, classes, first) if classes else None
    if detail is not None:
        return detail
    if cls == "ssn" and 7 <= n <= 11:
        return "ssn"
    if cls == "account" and 6 <= n <= 20:
        return "account_number"
    return "credit_card" if luhn and (cls != "lookalike" or n >= 15) else None


def _stretches(run: list[Item]) -> list[tuple[int, int]]:
    """(first, last) item ranges of the whole run and of each stretch of whole chunks, longest first."""
    starts = [0] + [i + 1 for i, it in enumerate(run[:-1]) if it.brk]
    ends = [s - 1 for s in starts[1:]] + [len(run) - 1]
    ranges = {(starts[a], ends[b]) for a in range(len(starts)) for b in range(a, len(ends))}
    length = {r: sum(len(it.digits) for it in run[r[0] : r[1] + 1]) for r in ranges}
    return sorted(ranges, key=lambda r: (-length[r], r[0]))


def _run_hits(texts: list[SegmentText], run: list[Item]) -> list[Hit]:
    if _followed_by_amount(texts, run[-1]):
        return []
    hits: list[Hit] = []
    taken: list[tuple[int, int]] = []
    for strict in (True, False):
        for a, b in _stretches(run):
            if any(a <= y and x <= b for x, y in taken):
                continue
            items = run[a : b + 1]
            st = texts[items[0].seg]
            first = not any(is_digit_word(w.text) for w in st.words[: items[0].word])
            kind = _classify(items, _classes(_context(texts, items[0])), strict=strict, first=first)
            if kind is not None:
                taken.append((a, b))
                hits.append(Hit(kind, tuple(items)))
    return hits


def find_sensitive(texts: list[SegmentText]) -> list[Hit]:
    """Every sensitive number of the call (``texts`` in time order), in time order."""
    hits = [hit for run in digit_runs(texts) for hit in _run_hits(texts, run)]
    return sorted(hits, key=lambda h: (h.items[0].seg, h.items[0].word))
