"""The transcript every stage shares: produced by the transcription deployment, read by the scorers,
stored on the analysis as JSON. Times are seconds from the start of the recording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

Speaker = Literal["agent", "customer", "A", "B"]
ROLE_LABELS = {"agent": "Agent", "customer": "Customer", "A": "Speaker A", "B": "Speaker B"}


class Word(BaseModel):
    text: str
    start: float
    end: float
    probability: float = Field(ge=0, le=1)


class Segment(BaseModel):
    """One turn: consecutive speech of one speaker."""

    speaker: Speaker
    channel: int | None = None
    text: str
    start: float
    end: float
    confidence: float = Field(ge=0, le=1)
    words: list[Word] = Field(default_factory=list)


class Redaction(BaseModel):
    """A span of the call whose words were replaced by a typed marker (``[CREDIT_CARD]``) in every
    stored and sent copy. ``last4``: the last four digits, kept where a user needs them (cards, SSNs,
    accounts); never more."""

    type: str
    start: float
    end: float
    speaker: Speaker
    channel: int | None = None
    last4: str | None = Field(default=None, pattern=r"^[0-9]{1,4}$")


class Transcript(BaseModel):
    language: str
    duration_s: float
    segments: list[Segment]
    # How speakers were told apart: "channels" (stereo), "turns" (mono: pauses, voice features, roles).
    diarization: Literal["channels", "turns", "none"] = "none"
    model: str = ""
    # What was redacted, in time order (see callcov.scoring.redaction).
    redactions: list[Redaction] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """One turn per line, prefixed by the role: ``Agent: …`` / ``Customer: …``."""
        return "\n".join(f"{ROLE_LABELS[s.speaker]}: {s.text.strip()}" for s in self.segments)

    @classmethod
    def from_public(
        cls, data: Mapping[str, Any], *, duration_s: float | None, model: str | None
    ) -> Transcript:
        """A transcript stored as its ``public()`` form, for scoring it again: diarization is
        "channels" where segments carry their channel (stereo), else "turns" (how mono calls are split)."""
        segments = [Segment.model_validate(s) for s in data.get("segments") or []]
        end = max((s.end for s in segments), default=0.0)
        return cls(
            language=str(data.get("language") or "en"),
            duration_s=duration_s if duration_s is not None else end,
            segments=segments,
            diarization="channels" if any(s.channel is not None for s in segments) else "turns",
            model=model or "",
            redactions=[Redaction.model_validate(r) for r in data.get("redactions") or []],
        )

    def public(self) -> dict[str, object]:
        """The contract's ``transcript`` object."""
        return {
            "text": self.text,
            "language": self.language,
            "segments": [s.model_dump(exclude_none=True) for s in self.segments],
            "redactions": [r.model_dump(exclude_none=True) for r in self.redactions],
        }
