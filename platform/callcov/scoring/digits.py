"""Spoken and written digits in a transcript, as ASR writes them: runs of digit words that the
sensitive-data detector classifies (``callcov.scoring.pci``).

A word is digits when each of its pieces is written with digits ("4111", "4111-1111"), is a digit word
("four", "oh" inside a number), a teen or a tens word ("eleven" = 11, "forty one" = 41), or a repeat
("double one" = 11, "triple four" = 444). Fillers ("uh", "um") inside a number are skipped.

A run is a maximal sequence of digit words. It continues into the next segment of the same speaker
when that segment starts with digits less than ``SPLIT_GAP_S`` after the first one ended (ASR and VAD
split a number read slowly into several segments). Each item remembers whether punctuation, a pause
over 1 s or a segment boundary follows it: the detector tries the whole run and every stretch of whole
chunks between such breaks."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from callcov.scoring.text import WORD_SPLIT, SegmentText

DIGIT_WORDS = {
    "zero": "0", "nil": "0", "oh": "0", "o": "0", "or": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
    "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fourty": "4", "fifty": "5", "sixty": "6",
    "seventy": "7", "eighty": "8", "ninety": "9",
}  # fmt: skip
REPEATS = {"double": 2, "triple": 3}
FILLERS = {"uh", "um", "er", "erm", "ah", "hmm", "mm"}
# Only a digit inside a number, never at its edges ("or": how ASR often writes a spoken "oh").
SOFT_ZERO = {"oh", "o", "or"}
_NUMERIC = re.compile(r"^[0-9]+$")
_DOTTED = re.compile(r"^[0-9]+(?:\.[0-9]+){2,}$")
_EDGE = ",.;:!?\"'()[]{}"
_PAUSE_S = 1.0
SPLIT_GAP_S = 2.0


@dataclass(frozen=True)
class Item:
    digits: str
    seg: int  # index of the segment (in the view's time order)
    word: int  # index of its first word in that segment
    last_word: int  # index of its last word ("forty one" is one item of two words)
    numeric: bool  # written with digits (keeps its grouping)
    soft: bool
    brk: bool = False  # punctuation, a pause or a segment boundary follows


def pieces_of(word: str) -> list[str]:
    """The lower-case pieces of a word; digits ASR separated by dots ("9.3.1", not "12.50") split."""
    out: list[str] = []
    for p in WORD_SPLIT.split(word):
        p = p.strip(_EDGE).lower()
        out.extend(p.split(".") if _DOTTED.match(p) else [p] if p else [])
    return out


def is_digit_word(word: str) -> bool:
    """Whether ``word`` says or writes any digit."""
    pieces = pieces_of(word)
    spoken = any(p in DIGIT_WORDS or p in TEENS or p in TENS or p in REPEATS for p in pieces)
    return spoken or any(c.isdigit() for c in word)


class _RunBuilder:
    """Reads one speaker's words in order and cuts them into runs of digit items."""

    def __init__(self) -> None:
        self.runs: list[list[Item]] = [[]]
        self.repeat = 1
        self.tens: Item | None = None  # a tens word waiting for its unit

    def _push(self, item: Item) -> None:
        self.runs[-1].append(item)

    def _flush_tens(self) -> None:
        if self.tens is not None:
            self._push(replace(self.tens, digits=self.tens.digits + "0"))
            self.tens = None

    def cut(self) -> None:
        self._flush_tens()
        self.repeat = 1
        if self.runs[-1]:
            self.runs.append([])

    def mark_break(self) -> None:
        self._flush_tens()
        if self.runs[-1]:
            self.runs[-1][-1] = replace(self.runs[-1][-1], brk=True)

    def word(self, st: SegmentText, wi: int) -> None:
        pieces = pieces_of(st.words[wi].text)
        if not pieces or (all(p in FILLERS for p in pieces) and self.runs[-1]):
            return
        for piece in pieces:
            if not self._piece(st.index, wi, piece):
                self.cut()
                return
        word = st.words[wi]
        pause = wi + 1 < len(st.words) and st.words[wi + 1].start - word.end > _PAUSE_S
        if word.text.rstrip()[-1:] in ",.;:!?" or pause:
            self.mark_break()

    def _piece(self, seg: int, wi: int, piece: str) -> bool:
        if piece in REPEATS:
            self._flush_tens()
            self.repeat = REPEATS[piece]
            return True
        if piece in TENS:
            self._flush_tens()
            self.tens = Item(TENS[piece], seg, wi, wi, False, False)
            return True
        if piece in DIGIT_WORDS and self.tens is not None and piece not in SOFT_ZERO | {"zero"}:
            self._push(replace(self.tens, digits=self.tens.digits + DIGIT_WORDS[piece], last_word=wi))
            self.tens = None
            self.repeat = 1
            return True
        if _NUMERIC.match(piece):
            digits, soft = piece, False
        elif piece in TEENS:
            digits, soft = TEENS[piece], False
        elif piece in DIGIT_WORDS:
            digits, soft = DIGIT_WORDS[piece], piece in SOFT_ZERO
        else:
            return False
        self._flush_tens()
        self._push(Item(digits * self.repeat, seg, wi, wi, piece.isdigit(), soft))
        self.repeat = 1
        return True

    def finish(self) -> list[list[Item]]:
        self.cut()
        out = []
        for run in self.runs:
            while run and run[0].soft:
                run = run[1:]
            while run and run[-1].soft:
                run = run[:-1]
            if run:
                out.append(run)
        return out


def _continues(prev: SegmentText, st: SegmentText, run: list[Item]) -> bool:
    """Whether ``st`` carries on the number that ended ``prev`` (the same speaker's previous segment)."""
    return (
        bool(run)
        and run[-1].seg == prev.index
        and run[-1].last_word >= len(prev.words) - 1
        and bool(st.words)
        and is_digit_word(st.words[0].text)
        and st.start - prev.end <= SPLIT_GAP_S
    )


def digit_runs(texts: list[SegmentText]) -> list[list[Item]]:
    """The runs of digit items of the whole call (``texts`` in time order), each speaker on its own."""
    builders: dict[str, _RunBuilder] = {}
    previous: dict[str, SegmentText] = {}
    for st in texts:
        builder = builders.setdefault(st.speaker, _RunBuilder())
        prev = previous.get(st.speaker)
        if prev is not None and _continues(prev, st, builder.runs[-1]):
            builder.mark_break()
        else:
            builder.cut()
        for wi in range(len(st.words)):
            builder.word(st, wi)
        previous[st.speaker] = st
    runs = [run for b in builders.values() for run in b.finish()]
    return sorted(runs, key=lambda run: (run[0].seg, run[0].word))
