"""Refusing regular expressions that could hang the scorer (catastrophic backtracking).

Two checks, both before a rubric is stored:

1. Static (deterministic): a repeat that may match more than once around another such repeat, where
   either is unbounded (``(a+)+``, ``(\\w+ ?)*``, ``(.*a){20}``), is refused.
2. Measured: every pattern, compiled as the scorer compiles it (``scoring.rubric.compile_pattern``),
   is searched over adversarial texts (each of its literal characters repeated, then a character that
   breaks the match, as in ``"a" * N + "!"``) in a separate process, because Python's ``re`` cannot be
   interrupted in a thread. A pattern slower than ``PATTERN_BUDGET_S`` on those texts, or a batch that
   does not finish within ``BATCH_TIMEOUT_S``, is refused.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

try:  # Python 3.11+
    import re._constants as sre_constants
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

PATTERN_BUDGET_S = 0.2
BATCH_TIMEOUT_S = 3.0
ADVERSARIAL_LENGTH = 3000

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}
_UNBOUNDED = sre_constants.MAXREPEAT


def nested_quantifier(pattern: str) -> bool:
    """Whether ``pattern`` repeats a sub-pattern that itself repeats, with either one unbounded."""
    return _nested(sre_parse.parse(pattern), outer=None)


def _nested(items: Any, outer: int | None) -> bool:
    for op, arg in items:
        if op in _REPEATS:
            low, high, body = arg
            if high > 1 and outer is not None and (high == _UNBOUNDED or outer == _UNBOUNDED):
                return True
            inner = high if high > 1 else outer
            if outer is not None and high > 1:
                inner = _UNBOUNDED if _UNBOUNDED in (high, outer) else high * outer
            if _nested(body, inner):
                return True
        elif op == sre_constants.SUBPATTERN:
            if _nested(arg[-1], outer):
                return True
        elif op == sre_constants.BRANCH:
            if any(_nested(branch, outer) for branch in arg[1]):
                return True
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            if _nested(arg[1], outer):
                return True
    return False


# Run in a fresh interpreter (-I): reads [pattern, ...] on stdin, prints "start <i>" before each
# pattern and "slow <i> <seconds>" for each one over the budget.
_CHILD = r"""
import json, re, sys, time
patterns, budget, length = json.load(sys.stdin)
for i, p in enumerate(patterns):
    print("start", i, flush=True)
    rx = re.compile(r"\b(?:%s)\b" % p)
    chars = sorted({c for c in p.lower() if c.isalnum() or c in " '-"})[:8] or ["a"]
    texts = [c * length + "!" for c in chars] + [(c + " ") * (length // 2) + "!" for c in chars[:3]]
    began = time.perf_counter()
    for t in texts:
        rx.search(t)
        if time.perf_counter() - began > budget:
            break
    spent = time.perf_counter() - began
    if spent > budget:
        print("slow", i, round(spent, 3), flush=True)
print("done", flush=True)
"""


async def slow_patterns(
    patterns: list[str], *, budget_s: float = PATTERN_BUDGET_S, timeout_s: float = BATCH_TIMEOUT_S
) -> list[int]:
    """Indexes of the patterns that are too slow on adversarial texts (compiling patterns is the
    caller's check; each one here compiles)."""
    if not patterns:
        return []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-c",
        _CHILD,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps([patterns, budget_s, ADVERSARIAL_LENGTH]).encode())
    proc.stdin.close()
    lines: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            while raw := await proc.stdout.readline():
                lines.append(raw.decode().strip())
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
    slow = [int(line.split()[1]) for line in lines if line.startswith("slow ")]
    if not lines or lines[-1] != "done":  # killed (or died) while searching with the last one started
        started = [int(line.split()[1]) for line in lines if line.startswith("start ")]
        slow.append(started[-1] if started else 0)
    return sorted(set(slow))
