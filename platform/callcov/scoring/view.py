"""One call as the checks see it: segments sorted by time with their normalised text, agent and
customer labels (inferred on "A"/"B" transcripts), turns, and the shape every check result shares."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from callcov.inference.transcript import Segment, Transcript
from callcov.scoring.fuzzy import Tolerance
from callcov.scoring.rubric import PhraseSection, Rubric, compile_pattern
from callcov.scoring.text import SegmentText, Span, find_matches, segment_text

Status = Literal["evaluated", "not_applicable", "unavailable"]
Source = Literal["rule", "llm"]
Direction = Literal["inbound", "outbound"]


def make_check(
    status: Status = "evaluated",
    *,
    evidence: Iterable[dict[str, Any]] = (),
    confidence: float = 0.0,
    source: Source = "rule",
    reason: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A check result: its own fields plus ``status``, ``evidence``, ``confidence``, ``source``, ``reason``."""
    return {
        "status": status,
        **fields,
        "evidence": list(evidence),
        "confidence": round(min(max(confidence, 0.0), 1.0), 2),
        "source": source,
        "reason": reason,
    }


@dataclass(frozen=True)
class Turn:
    """Consecutive segments of one speaker."""

    speaker: str
    segments: tuple[int, ...]
    start: float
    end: float


@dataclass
class CallView:
    transcript: Transcript
    rubric: Rubric
    direction: Direction | None
    segments: list[Segment]
    texts: list[SegmentText]
    agent: str | None
    customer: str | None
    roles_inferred: bool
    turns: list[Turn] = field(default_factory=list)

    @property
    def duration(self) -> float:
        last = max((s.end for s in self.segments), default=0.0)
        return max(self.transcript.duration_s, last)

    @property
    def role_factor(self) -> float:
        return self.rubric.roles.inferred_factor if self.roles_inferred else 1.0

    def role_of(self, label: str) -> str:
        """ "agent"/"customer" for a transcript label (the label itself when unknown)."""
        return {self.agent: "agent", self.customer: "customer"}.get(label, label)

    def label_of(self, role: str) -> str | None:
        return {"agent": self.agent, "customer": self.customer}.get(role)

    def agent_turns(self) -> list[Turn]:
        return [t for t in self.turns if self.agent is not None and t.speaker == self.agent]

    def texts_of(self, speaker: str | None) -> list[SegmentText]:
        return [t for t in self.texts if speaker is None or t.speaker == speaker]

    def asr_confidence(self, segments: Iterable[int] | None = None) -> float:
        chosen = range(len(self.segments)) if segments is None else segments
        values = [self.segments[i].confidence for i in chosen]
        return sum(values) / len(values) if values else 1.0

    def rule_confidence(self, spans: Sequence[Span], *, found: bool, approximate: bool = False) -> float:
        """Pattern results: how sure a found (or absent) statement is, given ASR and role certainty;
        lowered by ``phrase_matching.confidence_factor`` when it rests on a tolerant match."""
        c = self.rubric.confidence
        base = c.pattern_found if found else c.pattern_absent
        segs = {s.segment for s in spans} if spans else None
        factor = (
            self.rubric.phrase_matching.confidence_factor
            if approximate and self.rubric.phrase_matching
            else 1
        )
        return base * self.asr_confidence(segs) * self.role_factor * factor

    def tolerance(self, section: PhraseSection) -> Tolerance | None:
        """The rubric's tolerance for misheard words in ``section``'s phrases (None: exact only)."""
        pm = self.rubric.phrase_matching
        if pm is None or section not in pm.sections or pm.max_word_errors == 0:
            return None
        return Tolerance(pm.max_word_errors, pm.min_words)

    @property
    def language(self) -> str | None:
        """The call's language code as the recogniser detected it ("en-US" -> "en"); None if unknown."""
        code = re.split(r"[-_]", (self.transcript.language or "").strip().lower())[0]
        return code or None

    def language_reason(self) -> str | None:
        """Why the rubric's phrase checks do not apply to this call's language (None: they apply)."""
        langs = self.rubric.languages
        if not langs or self.language is None or self.language in langs:
            return None
        r = self.rubric
        return f"the rubric '{r.id}' v{r.version} covers {', '.join(langs)}; the call is in {self.language}"


def _turns(segments: list[Segment]) -> list[Turn]:
    turns: list[Turn] = []
    for i, seg in enumerate(segments):
        if turns and turns[-1].speaker == seg.speaker:
            last = turns[-1]
            turns[-1] = Turn(last.speaker, (*last.segments, i), last.start, max(last.end, seg.end))
        else:
            turns.append(Turn(seg.speaker, (i,), seg.start, seg.end))
    return turns


def _cue_score(rubric: Rubric, texts: list[SegmentText], speaker: str) -> int:
    patterns = [*rubric.roles.agent_cues, *rubric.identity.patterns]
    for d in rubric.disclosures:
        patterns.extend(d.patterns)
    compiled = [compile_pattern(p) for p in patterns]
    return sum(1 for st in texts if st.speaker == speaker for p in compiled for _ in find_matches(st, p))


def _roles(
    rubric: Rubric, segments: list[Segment], texts: list[SegmentText], direction: Direction | None
) -> tuple[str | None, str | None, bool]:
    """(agent label, customer label, inferred?). Known roles win; on "A"/"B" the speaker with more agent
    cues is the agent; a tie goes to the first speaker (the second one on outbound calls)."""
    labels = list(dict.fromkeys(s.speaker for s in segments))
    if "agent" in labels or "customer" in labels:
        return "agent", "customer", False
    if not labels:
        return None, None, False
    scores = {label: _cue_score(rubric, texts, label) for label in labels}
    best = max(scores.values())
    leaders = [label for label in labels if scores[label] == best]
    if len(leaders) == 1:
        agent = leaders[0]
    else:
        agent = labels[1] if direction == "outbound" and len(labels) > 1 else labels[0]
    others = [label for label in labels if label != agent]
    return agent, (others[0] if others else None), True


def build_view(transcript: Transcript, rubric: Rubric, direction: str | None) -> CallView:
    """Sort the segments, normalise their text and work out who the agent is."""
    segments = sorted(transcript.segments, key=lambda s: (s.start, s.end))
    texts = [segment_text(s, i) for i, s in enumerate(segments)]
    d = (direction or "").strip().lower()
    call_direction: Direction | None = d if d in ("inbound", "outbound") else None  # type: ignore[assignment]
    agent, customer, inferred = _roles(rubric, segments, texts, call_direction)
    return CallView(
        transcript=transcript,
        rubric=rubric,
        direction=call_direction,
        segments=segments,
        texts=texts,
        agent=agent,
        customer=customer,
        roles_inferred=inferred,
        turns=_turns(segments),
    )
