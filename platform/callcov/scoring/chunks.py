"""Long calls judged in parts (rubric ``llm.chunking``): the transcript, one line per segment, is cut
at line boundaries, where the speaker changes when that keeps a part at least half full, into parts of at most ``max_transcript_chars``, each starting ``overlap_turns`` lines
before the previous part ended (so that an exchange cut in two is seen whole once). At most
``max_chunks`` parts are asked: when more would be needed, the first and the last are kept with parts
evenly spaced between them, and each part's header says how many turns were left out before it. Each
part is prefixed with a header naming its place in the call; times stay seconds from the call start."""

from __future__ import annotations

from dataclasses import dataclass

from callcov.inference.transcript import ROLE_LABELS
from callcov.scoring.view import CallView

OMITTED = "[... {n} turns omitted ...]"


@dataclass(frozen=True)
class Part:
    first: int  # line indices, inclusive
    last: int
    text: str  # what goes into the prompt's transcript


def transcript_lines(view: CallView) -> list[str]:
    """One line per segment: ``[start-end] Speaker: text``."""
    out = []
    for seg in view.segments:
        role = view.role_of(seg.speaker)
        out.append(f"[{seg.start:.1f}-{seg.end:.1f}] {ROLE_LABELS.get(role, role)}: {seg.text.strip()}")
    return out


def render_head_tail(lines: list[str], max_chars: int) -> str:
    """The whole transcript when it fits; else its beginning and its end within ``max_chars``."""
    if sum(len(line) + 1 for line in lines) <= max_chars:
        return "\n".join(lines)
    head: list[str] = []
    tail: list[str] = []
    budget = max_chars // 2
    for line in lines:
        if sum(len(x) + 1 for x in head) + len(line) + 1 > budget:
            break
        head.append(line)
    for line in reversed(lines[len(head) :]):
        if sum(len(x) + 1 for x in tail) + len(line) + 1 > budget:
            break
        tail.insert(0, line)
    return "\n".join([*head, OMITTED.format(n=len(lines) - len(head) - len(tail)), *tail])


def _spans(lines: list[str], speakers: list[str], budget: int, overlap: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(lines):
        end, used = start, 0
        while end < len(lines) and (end == start or used + len(lines[end]) + 1 <= budget):
            used += len(lines[end]) + 1
            end += 1
        turn_end = end  # prefer to cut where the speaker changes, if the part stays at least half full
        while end < len(lines) and turn_end > start + 1 and speakers[turn_end] == speakers[turn_end - 1]:
            turn_end -= 1
        if sum(len(x) + 1 for x in lines[start:turn_end]) >= budget // 2:
            end = turn_end
        spans.append((start, end - 1))
        if end >= len(lines):
            break
        start = max(end - overlap, start + 1)
    return spans


def _evenly(spans: list[tuple[int, int]], keep: int) -> list[tuple[int, int]]:
    if len(spans) <= keep:
        return spans
    picks = sorted({round(i * (len(spans) - 1) / (keep - 1)) for i in range(keep)})
    return [spans[i] for i in picks]


def split_parts(
    lines: list[str], max_chars: int, overlap: int, max_chunks: int, speakers: list[str] | None = None
) -> list[Part]:
    """The parts to ask about (one part, without a header, when the transcript fits). ``speakers`` (one
    label per line) lets a part end where the speaker changes rather than inside a turn."""
    if sum(len(line) + 1 for line in lines) <= max_chars:
        return [Part(0, len(lines) - 1, "\n".join(lines))]
    header_room = 200
    budget = max(max_chars - header_room, 100)
    clipped = [line[:budget] for line in lines]
    labels = speakers if speakers is not None else [str(i) for i in range(len(lines))]
    spans = _evenly(_spans(clipped, labels, budget, overlap), max_chunks)
    parts: list[Part] = []
    previous_last = -1
    for k, (first, last) in enumerate(spans, start=1):
        header = (
            f"(Part {k} of {len(spans)} of a long call: turns {first + 1}-{last + 1} of {len(lines)}. "
            "Judge this part only; the other parts are judged separately. Times are seconds from the "
            "start of the call.)"
        )
        body = clipped[first : last + 1]
        if first > previous_last + 1:
            body = [OMITTED.format(n=first - previous_last - 1), *body]
        parts.append(Part(first, last, "\n".join([header, *body])))
        previous_last = last
    return parts
