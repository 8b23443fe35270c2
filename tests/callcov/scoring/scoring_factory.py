"""Hand-built transcripts for the scoring tests: timed words, and a scripted LLMClient double."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callcov.inference.ports import ChatMessage
from callcov.inference.transcript import Segment, Transcript, Word

WORD_S = 0.3  # each word lasts 0.3 s, followed by a 0.05 s pause
STEP_S = 0.35


def seg(
    speaker: str,
    start: float,
    text: str,
    *,
    end: float | None = None,
    words: bool = True,
    confidence: float = 0.95,
) -> Segment:
    """A segment starting at ``start``; words are 0.35 s apart (or spread evenly up to ``end``)."""
    tokens = text.split()
    step = STEP_S if end is None else (end - start) / max(len(tokens), 1)
    timed = [
        Word(
            text=t,
            start=round(start + i * step, 3),
            end=round(start + i * step + step * 0.85, 3),
            probability=0.9,
        )
        for i, t in enumerate(tokens)
    ]
    stop = end if end is not None else (timed[-1].end if timed else start)
    return Segment(
        speaker=speaker,  # type: ignore[arg-type]
        text=text,
        start=start,
        end=stop,
        confidence=confidence,
        words=timed if words else [],
    )


def call(*segments: Segment, duration: float | None = None, diarization: str = "channels") -> Transcript:
    """A transcript of ``segments``; the duration defaults to 1 s after the last word."""
    last = max((s.end for s in segments), default=0.0)
    return Transcript(
        language="en",
        duration_s=duration if duration is not None else last + 1.0,
        segments=list(segments),
        diarization=diarization,  # type: ignore[arg-type]
        model="test",
    )


def compliant_call(*, words: bool = True) -> Transcript:
    """An outbound call that passes every rule of the default rubric."""
    return call(
        seg("agent", 0.5, "Hello, good morning. My name is John Smith from Acme Bank.", words=words),
        seg("customer", 5.0, "Hi John.", words=words),
        seg(
            "agent",
            6.0,
            "This call may be recorded for quality and training purposes. "
            "I'm calling about your recent card application.",
            words=words,
        ),
        seg("customer", 13.0, "Oh great, thanks. I was worried it got lost.", words=words),
        seg(
            "agent", 16.5, "I understand. Good news, your higher limit has been approved today.", words=words
        ),
        seg("customer", 21.0, "That's wonderful, thank you so much.", words=words),
        seg(
            "agent", 23.5, "Is there anything else I can help you with today? Have a great day.", words=words
        ),
        seg("customer", 28.5, "No, that's all. Bye.", words=words),
    )


Reply = dict[str, Any] | Exception | Callable[[list[ChatMessage]], dict[str, Any]]


class ScriptedLLM:
    """The LLMClient port, answering from a script: a dict is returned, an exception raised."""

    model = "scripted-test-llm"

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[list[ChatMessage], dict[str, Any], int]] = []

    async def chat_json(
        self, messages: list[ChatMessage], schema: dict[str, Any], *, max_tokens: int = 1024
    ) -> dict[str, Any]:
        self.calls.append((list(messages), schema, max_tokens))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(messages)
        return reply


def good_answer(**overrides: Any) -> dict[str, Any]:
    """A valid judgement answer for ``compliant_call`` (quotes and times from that call)."""
    answer: dict[str, Any] = {
        "empathy": {
            "shown": True,
            "evidence": [{"quote": "I understand", "start": 16.5, "end": 20.0, "speaker": "agent"}],
        },
        "sentiment_analysis": {
            "agent_sentiment": "positive",
            "customer_sentiment": "positive",
            "customer_sentiment_start": "neutral",
            "customer_sentiment_end": "positive",
            "evidence": [
                {
                    "quote": "That's wonderful, thank you so much",
                    "start": 21.0,
                    "end": 23.0,
                    "speaker": "customer",
                }
            ],
        },
        "call_structure": {
            "opening": True,
            "resolution": True,
            "closing": True,
            "evidence": [
                {
                    "quote": "your higher limit has been approved today",
                    "start": 16.5,
                    "end": 20.5,
                    "speaker": "agent",
                }
            ],
        },
        "coaching": {
            "recommendations": [
                {
                    "priority": "low",
                    "category": "communication",
                    "recommendation": "Confirm the new limit in writing.",
                }
            ],
            "customer_effort_score": 1,
        },
        "summary": "The agent called about the customer's card application and confirmed the higher limit.",
    }
    answer.update(overrides)
    return answer
