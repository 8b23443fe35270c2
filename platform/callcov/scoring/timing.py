"""Timing checks: interruptions and talk metrics (talk ratio per side, silences).

- Speech of a segment is its words' intervals when the transcript has word timestamps, else the whole
  segment. Gaps shorter than ``talk_metrics.min_silence_gap_s`` are pauses inside speech, not silence.
- Silence is time where nobody speaks, from 0 to the call's duration: leading and trailing silence count.
- An interruption: a segment starts at t while a segment of the other speaker began before t and its
  speech (last word, else segment end) runs past t + ``interruptions.tolerance_s``. A backchannel
  ("mm-hmm", "yeah", "I see") is not an interruption. On mono recordings split by turns, overlaps are
  mostly invisible: the counts are a lower bound and the confidence is halved."""

from __future__ import annotations

from typing import Any

from callcov.scoring.view import CallView, make_check

Interval = tuple[float, float]
TALK_EMPTY: dict[str, Any] = {
    "agent_talk_s": None,
    "customer_talk_s": None,
    "agent_talk_ratio": None,
    "customer_talk_ratio": None,
    "total_silence_s": None,
    "longest_silence_s": None,
    "longest_silence_start": None,
    "talk_ratio_flagged": False,
    "long_silence_flagged": False,
    "flagged": False,
}
INTERRUPTIONS_EMPTY: dict[str, Any] = {
    "total": None,
    "agent_interruptions": None,
    "customer_interruptions": None,
    "flagged": False,
}


def _speech(view: CallView, index: int) -> list[Interval]:
    seg = view.segments[index]
    if seg.words:
        return [(w.start, w.end) for w in seg.words if w.end >= w.start and w.text.strip()]
    return [(seg.start, seg.end)] if seg.end > seg.start else []


def _merge(intervals: list[Interval], bridge: float) -> list[Interval]:
    """Union of intervals; gaps shorter than ``bridge`` are closed."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start - out[-1][1] < bridge:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _gaps(speech: list[Interval], duration: float, minimum: float) -> list[Interval]:
    """Silences of at least ``minimum`` seconds between 0 and ``duration``."""
    gaps: list[Interval] = []
    cursor = 0.0
    for start, end in speech:
        if start - cursor >= minimum and start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if duration - cursor >= minimum and duration > cursor:
        gaps.append((cursor, duration))
    return gaps


def talk_metrics(view: CallView) -> dict[str, Any]:
    """Talk time and ratio per side, total and longest silence, with the rubric's flags."""
    rules = view.rubric.talk_metrics
    if not view.segments:
        return make_check("not_applicable", reason="no speech in the call", **TALK_EMPTY)
    per_label: dict[str, list[Interval]] = {}
    for i, seg in enumerate(view.segments):
        per_label.setdefault(seg.speaker, []).extend(_speech(view, i))
    bridge = rules.min_silence_gap_s
    talk = {label: sum(e - s for s, e in _merge(iv, bridge)) for label, iv in per_label.items()}
    agent_s = talk.get(view.agent or "", 0.0)
    customer_s = talk.get(view.customer or "", 0.0)
    both = agent_s + customer_s
    agent_ratio = agent_s / both if both else None
    everyone = _merge([iv for ivs in per_label.values() for iv in ivs], bridge)
    gaps = _gaps(everyone, view.duration, bridge)
    longest = max(gaps, key=lambda g: g[1] - g[0], default=None)
    longest_s = longest[1] - longest[0] if longest else 0.0
    ratio_flag = agent_ratio is not None and not (
        rules.agent_ratio_min <= agent_ratio <= rules.agent_ratio_max
    )
    silence_flag = longest_s >= rules.long_silence_s
    return make_check(
        agent_talk_s=round(agent_s, 2),
        customer_talk_s=round(customer_s, 2),
        agent_talk_ratio=None if agent_ratio is None else round(agent_ratio, 3),
        customer_talk_ratio=None if agent_ratio is None else round(1 - agent_ratio, 3),
        total_silence_s=round(sum(e - s for s, e in gaps), 2),
        longest_silence_s=round(longest_s, 2),
        longest_silence_start=round(longest[0], 2) if longest else None,
        talk_ratio_flagged=ratio_flag,
        long_silence_flagged=silence_flag,
        flagged=ratio_flag or silence_flag,
        confidence=view.rubric.confidence.measured * view.role_factor,
    )


def _is_backchannel(view: CallView, index: int) -> bool:
    tokens = view.texts[index].tokens
    allowed = set(view.rubric.interruptions.backchannels)
    return 0 < len(tokens) <= 3 and all(t in allowed for t in tokens)


def _interrupters(view: CallView) -> list[int]:
    """Indices of segments that start while another speaker's earlier segment is still running."""
    tolerance = view.rubric.interruptions.tolerance_s
    running: dict[str, float] = {}  # speaker -> latest speech end of their segments so far
    out: list[int] = []
    for j, seg in enumerate(view.segments):
        speech = _speech(view, j)
        t = speech[0][0] if speech else seg.start
        if any(end > t + tolerance for label, end in running.items() if label != seg.speaker):
            out.append(j)
        end = max((e for _, e in speech), default=seg.end)
        running[seg.speaker] = max(running.get(seg.speaker, 0.0), end)
    return out


def interruptions(view: CallView) -> dict[str, Any]:
    """Counts per side: ``agent_interruptions`` are the agent's (cutting the customer off), and so on."""
    rules = view.rubric.interruptions
    if len({s.speaker for s in view.segments}) < 2:
        return make_check("not_applicable", reason="fewer than two speakers", **INTERRUPTIONS_EMPTY)
    counts = {"agent": 0, "customer": 0}
    evidence = []
    for j in _interrupters(view):
        if _is_backchannel(view, j):
            continue
        role = view.role_of(view.segments[j].speaker)
        if role in counts:
            counts[role] += 1
        st = view.texts[j]
        if st.words and len(evidence) < 10:
            evidence.append(st.span(0, min(7, len(st.words) - 1)).evidence())
    confidence = view.rubric.confidence.measured * view.role_factor
    reason = None
    if view.transcript.diarization == "turns":
        confidence *= 0.5
        reason = "mono recording split by turns: overlapping speech is mostly not visible"
    return make_check(
        total=counts["agent"] + counts["customer"],
        agent_interruptions=counts["agent"],
        customer_interruptions=counts["customer"],
        flagged=counts["agent"] >= rules.flag_agent_count,
        evidence=evidence,
        confidence=confidence,
        reason=reason,
    )
