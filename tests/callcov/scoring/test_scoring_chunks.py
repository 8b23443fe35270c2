"""Long calls are judged in parts (rubric v3 ``llm.chunking``): a 40,000-character call whose key facts
sit in the middle is judged from the middle, the parts' answers are combined, the requests are bounded,
and an invalid answer still degrades to the rule parts. The LLM is ``PartReadingLLM``, a test double of
the LLMClient port that records every prompt and answers from the transcript lines it was sent."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from scoring_factory import call, seg

from callcov.inference.ports import ChatMessage, LLMOutputInvalid
from callcov.inference.transcript import Transcript
from callcov.scoring import load_rubric, score
from callcov.scoring.chunks import split_parts
from callcov.scoring.combine import combine, join_summaries

PART = re.compile(r"^\(Part (\d+) of \d+ ", re.M)
LINE = re.compile(r"^\[(\d+\.\d)-(\d+\.\d)\] (Agent|Customer): (.*)$", re.M)
OPENING = "Hello, good morning, my name is Dana from Acme Bank, how are you today?"
ANGRY = "I am furious, you charged my card twice for the same order last week!"
SORRY = "I am so sorry to hear that, I completely understand how upsetting that is."
REFUND = "I have refunded the duplicate charge for that order today, it is approved."
RECORDING = "Just so you know, we keep a recording of everything said on this line."
CLOSING = "Thank you so much for your patience today, goodbye and take care now."
FILLER = (
    ("agent", "Let me look at the next entry of the statement history for you right now."),
    ("customer", "Sure, take your time, I can wait here while you look at those entries."),
)


def long_call(middle: int = 280, total: int = 560) -> Transcript:
    """About 40,000 characters rendered; the key facts at turn ``middle``."""
    script: list[tuple[str, str]] = [("agent", OPENING)]
    for i in range(1, total):
        script.append(FILLER[i % 2])
        if i == middle:
            script += [("customer", ANGRY), ("agent", SORRY), ("agent", RECORDING), ("agent", REFUND)]
    script.append(("agent", CLOSING))
    segments, t = [], 0.0
    for speaker, text in script:
        segments.append(seg(speaker, t, text))
        t = segments[-1].end + 0.5
    return call(*segments)


def _quote(lines: list[tuple[str, str, str, str]], text: str, words: int = 6) -> list[dict[str, Any]]:
    for start, end, speaker, said in lines:
        if said == text:
            quote = " ".join(said.split()[:words])
            return [{"quote": quote, "start": float(start), "end": float(end), "speaker": speaker.lower()}]
    return []


class PartReadingLLM:
    """Answers each request from the transcript lines in it; records (transcript, schema) per request."""

    model = "part-reading-test-llm"

    def __init__(self, *, invalid_parts: tuple[int, ...] = (), summary: Any = None) -> None:
        self.invalid_parts = invalid_parts
        self.summary = summary or {"summary": "A customer charged twice got the duplicate charge refunded."}
        self.prompts: list[str] = []
        self.schemas: list[dict[str, Any]] = []

    async def chat_json(
        self, messages: list[ChatMessage], schema: dict[str, Any], *, max_tokens: int = 1024
    ) -> dict[str, Any]:
        self.prompts.append(messages[1].content)
        self.schemas.append(schema)
        if list(schema["properties"]) == ["summary"]:
            if isinstance(self.summary, Exception):
                raise self.summary
            return dict(self.summary)
        found = PART.search(messages[1].content)
        part = int(found.group(1)) if found else 1
        if part in self.invalid_parts:
            raise LLMOutputInvalid("not JSON")
        return self.answer(messages[1].content, schema, part)

    def answer(self, prompt: str, schema: dict[str, Any], part: int) -> dict[str, Any]:
        lines = LINE.findall(prompt)
        said = {text for *_, text in lines}
        rec = {"priority": "medium", "category": "resolution", "recommendation": "Confirm the next steps."}
        recs = [rec] + (
            [{"priority": "high", "category": "empathy", "recommendation": "Apologise sooner."}]
            if ANGRY in said
            else []
        )
        out = {
            "empathy": {"shown": SORRY in said, "evidence": _quote(lines, SORRY)},
            "sentiment_analysis": {
                "agent_sentiment": "positive",
                "customer_sentiment": "negative" if ANGRY in said else "neutral",
                "customer_sentiment_start": "negative" if OPENING in said else "neutral",
                "customer_sentiment_end": "positive" if CLOSING in said else "neutral",
                "evidence": _quote(lines, ANGRY),
            },
            "call_structure": {
                "opening": OPENING in said,
                "resolution": REFUND in said,
                "closing": CLOSING in said,
                "evidence": _quote(lines, REFUND),
            },
            "coaching": {"recommendations": recs, "customer_effort_score": 4 if ANGRY in said else 1},
            "summary": f"Part {part} summary.",
            "paraphrased_disclosures": [
                {"id": "call_recording_notice", "quote": q["quote"], "start": q["start"], "end": q["end"]}
                for q in _quote(lines, RECORDING, words=12)
            ],
        }
        return {k: out[k] for k in schema["properties"]}


def transcript_of(prompt: str) -> str:
    return prompt.split("times in seconds):\n", 1)[1]


@pytest.mark.asyncio
class TestLongCall:
    async def test_judged_from_the_middle(self) -> None:
        t, llm = long_call(), PartReadingLLM()
        rubric = load_rubric()
        assert len("\n".join(s.text for s in t.segments)) > 40_000
        result = await score(t, llm=llm, call_direction="outbound")
        parts = [
            p for p, s in zip(llm.prompts, llm.schemas, strict=True) if list(s["properties"]) != ["summary"]
        ]
        assert 3 <= len(parts) <= rubric.llm.chunking.max_chunks and len(llm.prompts) == len(parts) + 1
        assert all(len(transcript_of(p)) <= rubric.llm.max_transcript_chars for p in parts)
        sent = {text for p in parts for *_, text in LINE.findall(p)}
        assert sent == {s.text for s in t.segments}  # every turn was seen by the LLM
        assert sum(REFUND in p for p in parts) >= 1 and sum(OPENING in p for p in parts) == 1
        r = result.results
        assert result.llm_status == "ok" and r["evaluation"]["chunks"] == len(parts)
        assert result.prompt_version == "scoring/v1+summary/v1"
        structure = r["quality"]["call_structure"]
        assert (structure["opening"], structure["resolution"], structure["closing"]) == (True, True, True)
        assert structure["evidence"][0]["quote"] == "I have refunded the duplicate charge"
        empathy = r["quality"]["empathy"]
        assert empathy["shown"] is True and empathy["evidence"][0]["quote"].startswith("I am so sorry")
        sentiment = r["quality"]["sentiment_analysis"]
        assert (sentiment["customer_sentiment_start"], sentiment["customer_sentiment_end"]) == (
            "negative",
            "positive",
        )
        assert sentiment["customer_sentiment"] == "neutral" and sentiment["sentiment_shift"] == "improved"
        coaching = r["coaching"]
        assert coaching["customer_effort_score"] == 4
        llm_recs = [x["recommendation"] for x in coaching["recommendations"] if x["source"] == "llm"]
        assert llm_recs == ["Apologise sooner.", "Confirm the next steps."]
        disc = r["compliance"]["mandatory_disclosures"]
        assert disc["read"] is True and disc["matched_by"] == {"call_recording_notice": "llm"}
        assert r["summary"] == "A customer charged twice got the duplicate charge refunded."
        summary_prompt = llm.prompts[-1]
        assert all(f"Part {k} summary." in summary_prompt for k in range(1, len(parts) + 1))

    async def test_without_chunking_the_middle_is_dropped(self) -> None:
        llm = PartReadingLLM()
        result = await score(
            long_call(), rubric=load_rubric("default", "2"), llm=llm, call_direction="outbound"
        )
        assert len(llm.prompts) == 1 and REFUND not in llm.prompts[0] and "turns omitted" in llm.prompts[0]
        assert result.results["quality"]["call_structure"]["resolution"] is False

    async def test_requests_are_capped(self) -> None:
        t, llm = long_call(middle=800, total=1600), PartReadingLLM()
        result = await score(t, llm=llm, call_direction="outbound")
        parts = llm.prompts[:-1]
        assert len(parts) == 6 and result.results["evaluation"]["chunks"] == 6
        assert OPENING in parts[0] and CLOSING in parts[-1]
        assert all("turns omitted" in p for p in parts[1:])
        assert result.results["quality"]["call_structure"]["closing"] is True

    async def test_an_invalid_part_degrades_to_the_rules(self) -> None:
        llm = PartReadingLLM(invalid_parts=(2,))
        result = await score(long_call(), llm=llm, call_direction="outbound")
        assert len(llm.prompts) == 1 + 2  # part 1, then part 2 twice; no later part is asked
        assert (result.llm_status, result.llm_degraded, result.llm_attempts) == ("degraded", True, 3)
        evaluation = result.results["evaluation"]
        assert evaluation["llm"] == "degraded" and "part 2 of" in evaluation["reason"]
        assert result.results["quality"]["sentiment_analysis"]["status"] == "unavailable"
        assert result.results["quality"]["empathy"]["source"] == "rule"
        assert result.summary_source == "rule"

    async def test_invalid_merged_summary_joins_the_parts(self) -> None:
        llm = PartReadingLLM(summary={"summary": ""})
        result = await score(long_call(), llm=llm, call_direction="outbound")
        assert result.llm_status == "ok" and result.results["summary"].startswith(
            "Part 1 summary. Part 2 summary."
        )


class TestPieces:
    def test_parts_overlap_and_fit(self) -> None:
        lines = [f"[{i}.0-{i}.5] Agent: " + "word " * 20 for i in range(100)]
        parts = split_parts(lines, max_chars=1000, overlap=2, max_chunks=50)
        assert parts[0].first == 0 and parts[-1].last == 99
        for a, b in zip(parts, parts[1:], strict=False):
            assert b.first == a.last - 1  # two lines of overlap
        assert all(len(p.text) <= 1000 for p in parts)
        assert split_parts(lines[:3], 1000, 2, 4)[0].text == "\n".join(lines[:3])  # fits: no header

    def test_parts_end_where_the_speaker_changes(self) -> None:
        lines = [f"[{i}.0-{i}.5] Agent: " + "word " * 20 for i in range(40)]
        speakers = ["agent" if (i // 3) % 2 == 0 else "customer" for i in range(40)]  # turns of 3 lines
        parts = split_parts(lines, max_chars=1000, overlap=0, max_chunks=50, speakers=speakers)
        assert len(parts) > 2
        for p in parts[:-1]:
            assert speakers[p.last] != speakers[p.last + 1]

    def test_combine_keeps_the_schema(self) -> None:
        rubric = load_rubric()
        llm = PartReadingLLM()
        schema = {**rubric.llm.json_schema}
        answers = [llm.answer(p, schema, k) for k, p in enumerate([OPENING, ANGRY, CLOSING], start=1)]
        merged = combine(answers, schema)
        Draft202012Validator(schema).validate(merged)
        assert json.dumps(merged)

    def test_join_summaries_is_bounded(self) -> None:
        text = join_summaries(["One sentence here. " * 20, "Two."], 100)
        assert len(text) <= 100 and text.endswith(".")
