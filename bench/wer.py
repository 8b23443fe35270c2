"""Word error rate of a transcript against the script it was spoken from.

Both sides are normalised the same way before the words are aligned: lower case, punctuation dropped,
``$2,400`` read as ``2400 dollars``, and every run of numbers (digits, or number words such as
``four one one one``, ``twelve twenty seven``, ``two thousand four hundred``, ``double one``, ``oh``)
rewritten as its digits, one word per digit. So ``1227``, ``12-27`` and ``twelve twenty seven`` are
the same four words, and a misheard digit counts as one error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
TEENS = {
    w: 10 + i
    for i, w in enumerate(
        "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
TENS = {w: 20 + 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
NUMBER_WORDS = {*UNITS, *TEENS, *TENS, *SCALES, "oh", "double", "triple"}


def tokens(text: str) -> list[str]:
    """The normalised words of ``text``."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"\$\s*([\d,.]+)", r"\1 dollars", text)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 2,400
    text = re.sub(r"(?<=\d)[-./](?=\d)", " ", text)  # 1-2-3, 5.5.2.9
    text = text.replace("%", " percent")
    words = re.sub(r"[^a-z0-9' ]+", " ", text).replace("'", "").split()
    return _digits(words)


def _is_number(words: Sequence[str], i: int) -> bool:
    word = words[i]
    if word.isdigit() or (word in NUMBER_WORDS and word != "oh"):
        return True
    if word == "oh":  # a digit only next to other numbers
        neighbours = [words[j] for j in (i - 1, i + 1) if 0 <= j < len(words)]
        return any(n.isdigit() or (n in NUMBER_WORDS and n != "oh") for n in neighbours)
    return False


def _digits(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        if not _is_number(words, i):
            out.append(words[i])
            i += 1
            continue
        run = []
        while i < len(words) and _is_number(words, i):
            run.append(words[i])
            i += 1
        out.extend(number_digits(run))
    return out


def number_digits(run: Sequence[str]) -> list[str]:
    """Digits of a run of number tokens, e.g. ``twelve twenty seven`` -> 1 2 2 7."""
    text = "".join(_values(run))
    return list(text)


def _values(run: Sequence[str]) -> Iterable[str]:
    total, small, kind = 0, 0, ""  # kind: the last token's class
    repeat = 1
    started = False
    for word in run:
        if word.isdigit() or word in ("oh",) or word in UNITS:
            digit = word if word.isdigit() else str(UNITS.get(word, 0))
            if word.isdigit() or not (kind == "tens" or kind == "scale"):
                if started:
                    yield str(total + small)
                if word.isdigit():
                    yield digit * repeat
                    total, small, kind, started, repeat = 0, 0, "", False, 1
                    continue
                if repeat > 1:
                    yield digit * repeat
                    total, small, kind, started, repeat = 0, 0, "", False, 1
                    continue
                total, small, kind, started = 0, int(digit), "unit", True
            else:
                small, kind = small + int(digit), "unit"
        elif word in ("double", "triple"):
            if started:
                yield str(total + small)
                total, small, kind, started = 0, 0, "", False
            repeat = 2 if word == "double" else 3
        elif word in TEENS or word in TENS:
            value = TEENS.get(word) or TENS[word]
            if started and kind == "scale":
                small += value
            else:
                if started:
                    yield str(total + small)
                total, small, started = 0, value, True
            kind = "tens" if word in TENS else "teen"
        else:  # a scale
            scale = SCALES[word]
            if not started:
                total, small, started = 0, 1, True
            if scale == 100:
                small = (small or 1) * 100
            else:
                total, small = (total + (small or 1)) * scale, 0
            kind = "scale"
    if started:
        yield str(total + small)


def edits(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level edit distance (substitutions, deletions, insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            current = min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
            previous, row[j] = row[j], current
    return row[len(hypothesis)]


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = tokens(reference), tokens(hypothesis)
    return edits(ref, hyp) / max(1, len(ref))
