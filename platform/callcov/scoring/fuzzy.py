"""Tolerant phrase matching: a rubric pattern that does not match a segment exactly may still match it
with a few words misheard by the speech recogniser ("this call may be recorder for quality", "you half
to pay", "this call me be recorded").

Method (word level, no character-level fuzziness):
- The pattern's vocabulary is the runs of letters in its source (char classes, escapes and group names
  removed). A transcript token that is not an exact vocabulary word is a *candidate* for a vocabulary
  word W when it starts with the same letter and either sounds like W (the same ``sound_key``: "half"
  and "have", "me" and "may") or is one letter away from a W of at least 5 letters ("recorder").
- Every candidate token is replaced by its vocabulary word and the exact pattern is run on that text.
  A match counts only when (a) it spans at least ``min_words`` tokens, (b) it replaced at most
  ``min(max_word_errors, words // min_words)`` tokens, and (c) a replaced token at either end of the
  match is a one-letter slip of a long word, never a sound-alike: an edge word has no context on one
  side, so "you have two options" does not become "you have to".
- Short patterns ("calm down", "guarantee", profanity) are shorter than ``min_words`` and so stay exact.
The match keeps the transcript's own words and times (quotes are never the corrected text)."""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from callcov.scoring.text import Match, SegmentText

_NOT_LITERAL = re.compile(r"\\.|\[[^\]]*\]|\(\?P<[^>]*>|\(\?[:=!<]*|\{[^}]*\}")
_LETTERS = re.compile(r"[a-z]+")
_VOWELS = set("aeiouy")
_SOUND = str.maketrans({"v": "f", "z": "s", "d": "t", "b": "p", "g": "k", "q": "k", "j": "k"})
_SILENT_L = re.compile(r"(?<=[ao])l(?=[fkm])")  # half, walk, calm
_LONG_WORD = 5


@dataclass(frozen=True)
class Tolerance:
    max_word_errors: int
    min_words: int

    def allowed(self, words: int) -> int:
        return 0 if words < self.min_words else min(self.max_word_errors, words // self.min_words)


@functools.lru_cache(maxsize=4096)
def sound_key(word: str) -> str:
    """A rough sound-alike key: first letter kept, later vowels and h/w dropped, voicing pairs merged."""
    w = _SILENT_L.sub("", word.replace("ph", "f").replace("ck", "k").replace("x", "ks"))
    w = re.sub(r"c(?=[eiy])", "s", w).replace("c", "k").translate(_SOUND)
    out = w[:1]
    for ch in w[1:]:
        if ch in _VOWELS or ch in "hw" or ch == out[-1]:
            continue
        out += ch
    return out


@functools.lru_cache(maxsize=512)
def vocabulary(pattern: str) -> frozenset[str]:
    """The literal words (runs of letters) of a rubric pattern."""
    return frozenset(_LETTERS.findall(_NOT_LITERAL.sub(" ", pattern)))


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one substitution, insertion or deletion."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :] if len(a) < len(b) else a[i + 1 :] == b[i + 1 :]


def slip(token: str, word: str) -> bool:
    """A one-letter slip of a long word (allowed anywhere in a match)."""
    return len(word) >= _LONG_WORD and token[:1] == word[:1] and _one_edit(token, word)


def sounds_like(token: str, word: str) -> bool:
    """The same first letter and the same sound key (allowed inside a match only)."""
    return token != word and token[:1] == word[:1] and sound_key(token) == sound_key(word)


@functools.lru_cache(maxsize=65536)
def _candidate(token: str, vocab: frozenset[str]) -> str | None:
    """The vocabulary word ``token`` may stand for: a slip first, else a sound-alike (None: neither)."""
    if token in vocab or not token.isalpha():
        return None
    best = sorted(w for w in vocab if slip(token, w)) or sorted(w for w in vocab if sounds_like(token, w))
    return best[0] if best else None


def _candidates(tokens: list[str], vocab: frozenset[str]) -> dict[int, str]:
    return {i: w for i, tok in enumerate(tokens) if (w := _candidate(tok, vocab)) is not None}


def _accepted(tokens: list[str], fixed: dict[int, str], first: int, last: int, tol: Tolerance) -> bool:
    errors = [i for i in fixed if first <= i <= last]
    if not errors or len(errors) > tol.allowed(last - first + 1):
        return False
    return all(slip(tokens[i], fixed[i]) for i in errors if i in (first, last))


def tolerant_matches(st: SegmentText, pattern: re.Pattern[str], tol: Tolerance) -> Iterator[Match]:
    """Approximate matches of a compiled rubric pattern in one segment (see the module docstring)."""
    tokens = st.tokens
    fixed = _candidates(tokens, vocabulary(pattern.pattern))
    if not fixed:
        return
    words = [fixed.get(i, t) for i, t in enumerate(tokens)]
    offsets, pos = [], 0
    for w in words:
        offsets.append(pos)
        pos += len(w) + 1
    text = " ".join(words)

    def token_at(char: int) -> int:
        return bisect_right(offsets, char) - 1

    for m in pattern.finditer(text):
        if m.end() <= m.start():
            continue
        first, last = token_at(m.start()), token_at(m.end() - 1)
        if not _accepted(tokens, fixed, first, last, tol):
            continue
        groups = {}
        for name, value in m.groupdict().items():
            if value is not None:
                a, b = token_at(m.start(name)), token_at(max(m.start(name), m.end(name) - 1))
                groups[name] = " ".join(tokens[a : b + 1])
        yield Match(st.token_span(first, last), groups, " ".join(tokens[first : last + 1]), True)
