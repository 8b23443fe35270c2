"""Real models, real scoring: espeak-ng calls (stereo and mono, with and without each violation)
transcribed by faster-whisper (packaged base model) and scored by the pipeline's scorer with the
packaged LLM served by llama.cpp over loopback HTTP. Assertions: the deterministic results, and the
structure and evidence validity of the LLM results (never the small model's judgement).

The CPU LLM needs about a minute per call on 2 cores, so the default run scores one call with it and the
others with the rules alone (the "LLM not configured" path); ``CALLCOV_FULL_MODEL_SUITE=1`` scores all
six calls with the LLM (5-7 minutes; the pre-release check in the README)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import asgi_in_thread
from speech import normalise, synthesize_call

from callcov.inference.openai_client import OpenAICompatibleClient
from callcov.inference.ports import TranscriptionRequest
from callcov.inference.transcript import Transcript
from callcov.scoring.scorer import ScoringResult, score
from deployments.llm_cpu import LlamaCppServer
from deployments.whisper import WhisperTranscriber

GREETING = "Hello, thank you for calling Acme Bank. My name is John."
NOTICE = "This call may be recorded for quality purposes."
CLOSING = ("agent", "Thank you for calling. Have a nice day. Goodbye.")
CALLS: dict[str, list[tuple[str, str]]] = {
    "compliant": [
        ("agent", f"{GREETING} {NOTICE}"),
        ("customer", "Hi John. I would like to check the balance of my savings account."),
        ("agent", "Of course. Your balance is two hundred dollars."),
        CLOSING,
    ],
    "no_identity": [
        ("agent", f"Hello, Acme Bank. {NOTICE}"),
        ("customer", "Hi. I would like to check the balance of my savings account."),
        ("agent", "Your balance is two hundred dollars."),
        CLOSING,
    ],
    "no_notice": [
        ("agent", GREETING),
        ("customer", "Hi John. I would like to check the balance of my savings account."),
        ("agent", "Your balance is two hundred dollars."),
        CLOSING,
    ],
    "card_number": [
        ("agent", f"{GREETING} {NOTICE}"),
        (
            "customer",
            "I want to pay my bill. My card number is four two four two, four two four two, four two four two, four two four two.",
        ),
        ("agent", "Thank you, the payment is done."),
        CLOSING,
    ],
    "prohibited": [
        ("agent", f"{GREETING} {NOTICE}"),
        ("customer", "I was charged twice and I am really upset about it."),
        ("agent", "Calm down. That's not my problem."),
        CLOSING,
    ],
}


LLM_CALLS = (
    {*CALLS, "compliant_mono"} if os.environ.get("CALLCOV_FULL_MODEL_SUITE") == "1" else {"compliant"}
)


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber({"model": "base", "device": "cpu", "compute_type": "int8", "cpu_threads": 2})


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    server = LlamaCppServer({"n_threads": 2, "n_ctx": 8192})
    with asgi_in_thread(server.build_asgi_app()) as url:
        yield f"{url}/v1"
    server.close()


@pytest_asyncio.fixture(scope="module")
async def llm(llm_url: str) -> AsyncIterator[OpenAICompatibleClient]:
    async with OpenAICompatibleClient(llm_url, "callcov-cpu-llm", timeout_s=300) as client:
        yield client


@pytest_asyncio.fixture(scope="module")
async def scored(
    transcriber: WhisperTranscriber, llm: OpenAICompatibleClient
) -> dict[str, tuple[Transcript, ScoringResult]]:
    calls = {name: synthesize_call(turns, stereo=True) for name, turns in CALLS.items()}
    calls["compliant_mono"] = synthesize_call(CALLS["compliant"], stereo=False)
    out = {}
    for name, call in calls.items():
        transcript = await transcriber.transcribe(TranscriptionRequest(audio_path=str(call.path)))
        scorer = llm if name in LLM_CALLS else None
        out[name] = (transcript, await score(transcript, llm=scorer, call_direction="inbound"))
    return out


def compliance(scored: dict[str, tuple[Transcript, ScoringResult]], name: str) -> dict[str, Any]:
    return scored[name][1].results["compliance"]


def all_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [check for section in ("compliance", "quality") for check in results[section].values()]


@pytest.mark.asyncio
class TestDeterministicResults:
    async def test_compliant_call_passes(self, scored) -> None:  # type: ignore[no-untyped-def]
        for name in ("compliant", "compliant_mono"):
            c = compliance(scored, name)
            assert (
                c["identity_verification"]["verified"] is True and not c["identity_verification"]["flagged"]
            ), name
            assert c["mandatory_disclosures"]["matched_disclosures"] == ["call_recording_notice"], name
            assert c["prohibited_phrases"]["used"] is False and c["sensitive_data"]["shared"] is False, name
            assert c["purpose_declaration"]["status"] == "not_applicable", name  # inbound

    async def test_each_violation_is_found(self, scored) -> None:  # type: ignore[no-untyped-def]
        assert compliance(scored, "no_identity")["identity_verification"]["flagged"] is True
        notice = compliance(scored, "no_notice")["mandatory_disclosures"]
        assert (
            "call_recording_notice" in notice["missing_disclosures"]
            or notice["matched_by"].get("call_recording_notice") == "llm"
        )
        card = compliance(scored, "card_number")["sensitive_data"]
        assert card["shared"] is True and card["instances"][0]["type"] == "credit_card"
        assert "4242 4242" not in str(card) and card["instances"][0]["text"].endswith("4242")
        prohibited = compliance(scored, "prohibited")["prohibited_phrases"]
        assert prohibited["used"] is True and {i["speaker"] for i in prohibited["instances"]} == {"agent"}

    async def test_talk_metrics_add_up(self, scored) -> None:  # type: ignore[no-untyped-def]
        talk = scored["compliant"][1].results["quality"]["talk_metrics"]
        assert talk["agent_talk_ratio"] + talk["customer_talk_ratio"] == pytest.approx(1, abs=0.02)
        assert talk["agent_talk_ratio"] > talk["customer_talk_ratio"]


@pytest.mark.asyncio
class TestLlmResults:
    async def test_structure(self, scored) -> None:  # type: ignore[no-untyped-def]
        for name, (_, result) in scored.items():
            results = result.results
            assert set(results) >= {"rubric", "compliance", "quality", "coaching", "summary"}, name
            if name in LLM_CALLS:
                assert result.llm_status in ("ok", "degraded"), name
                assert result.prompt_version == "scoring/v1" and result.llm_model == "callcov-cpu-llm"
            else:
                assert result.llm_status == "not_configured" and result.summary_source == "rule", name
            sentiment = results["quality"]["sentiment_analysis"]
            assert sentiment["status"] in ("evaluated", "unavailable")
            if result.llm_status == "ok":
                assert sentiment["source"] == "llm" and 0 <= sentiment["confidence"] <= 1
                effort = results["coaching"]["customer_effort_score"]
                assert isinstance(effort, int) and 0 <= effort <= 5
            assert isinstance(results["summary"], str) and results["summary"]
            for rec in results["coaching"]["recommendations"]:
                assert rec["priority"] in ("high", "medium", "low") and rec["recommendation"]

    async def test_every_evidence_quote_is_in_the_transcript_at_its_time(self, scored) -> None:  # type: ignore[no-untyped-def]
        for name, (transcript, result) in scored.items():
            for check in all_checks(result.results):
                assert check["source"] in ("rule", "llm") and 0 <= check["confidence"] <= 1, (name, check)
                for item in check["evidence"]:
                    spoken = [
                        s
                        for s in transcript.segments
                        if s.speaker == item["speaker"] and s.start - 1 <= item["start"] <= s.end + 1
                    ]
                    assert any(normalise(item["quote"]) in normalise(s.text) for s in spoken), (name, item)

    async def test_at_least_one_call_got_a_valid_llm_answer(self, scored) -> None:  # type: ignore[no-untyped-def]
        assert any(result.llm_status == "ok" for _, result in scored.values())
