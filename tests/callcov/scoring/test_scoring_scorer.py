"""score(): the results object, the LLM part (valid, fabricated quotes, re-ask, degrade, errors) and levels.
The LLM is a scripted double of the LLMClient port; the real model is tested elsewhere."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from scoring_factory import ScriptedLLM, call, compliant_call, good_answer, seg

from callcov.inference.ports import InferenceError, LLMOutputInvalid
from callcov.inference.transcript import Transcript
from callcov.scoring import ScoringResult, score, verify_evidence

pytestmark = pytest.mark.asyncio

QUALITY = ["greeting", "sentiment_analysis", "empathy", "interruptions", "call_structure", "talk_metrics"]
COMPLIANCE = [
    "identity_verification",
    "mandatory_disclosures",
    "purpose_declaration",
    "prohibited_phrases",
    "sensitive_data",
]


def checks(result: ScoringResult) -> list[dict[str, Any]]:
    r = result.results
    return [*r["compliance"].values(), *r["quality"].values(), r["coaching"]]


def assert_contract_shape(result: ScoringResult, transcript: Transcript) -> None:
    """The contract's keys, the common check fields, and every quote verifiable at its times."""
    r = result.results
    assert list(r) == ["rubric", "compliance", "quality", "coaching", "summary", "evaluation"]
    assert list(r["compliance"]) == COMPLIANCE and list(r["quality"]) == QUALITY
    assert isinstance(r["summary"], str) and r["summary"]
    for check in checks(result):
        assert check["status"] in ("evaluated", "not_applicable", "unavailable")
        assert check["source"] in ("rule", "llm") and 0 <= check["confidence"] <= 1
        for ev in check["evidence"]:
            assert set(ev) == {"quote", "start", "end", "speaker"}
        assert verify_evidence(transcript, check["evidence"], tolerance_s=0.0) == check["evidence"]
    json.dumps(r)
    assert pickle.loads(pickle.dumps(result)) == result


class TestValidAnswer:
    async def test_full_results(self) -> None:
        llm, t = ScriptedLLM(good_answer()), compliant_call()
        result = await score(t, llm=llm, call_direction="outbound")
        assert_contract_shape(result, t)
        r = result.results
        assert r["rubric"] == {"id": "default", "version": "3"}
        assert r["quality"]["sentiment_analysis"]["sentiment_shift"] == "improved"
        assert r["quality"]["sentiment_analysis"]["source"] == "llm"
        assert r["quality"]["empathy"]["shown"] is True
        assert r["quality"]["call_structure"] == {
            **r["quality"]["call_structure"],
            "opening": True,
            "resolution": True,
            "closing": True,
            "flagged": False,
        }
        assert r["coaching"]["customer_effort_score"] == 1
        assert r["coaching"]["recommendations"] == [
            {
                "priority": "low",
                "category": "communication",
                "recommendation": "Confirm the new limit in writing.",
                "source": "llm",
            }
        ]
        assert r["summary"].startswith("The agent called about")
        meta = result.metadata
        assert meta["llm_status"] == "ok" and meta["llm_degraded"] is False and meta["llm_attempts"] == 1
        assert (meta["llm_model"], meta["prompt_version"], meta["summary_source"]) == (
            "scripted-test-llm",
            "scoring/v1",
            "llm",
        )

    async def test_one_constrained_call(self) -> None:
        llm = ScriptedLLM(good_answer())
        await score(compliant_call(), llm=llm, call_direction="outbound")
        [(messages, schema, max_tokens)] = llm.calls
        assert schema["required"] == [
            "empathy",
            "sentiment_analysis",
            "call_structure",
            "coaching",
            "summary",
        ]
        assert max_tokens == 1200 and "Agent: Hello, good morning." in messages[-1].content

    async def test_fabricated_quotes_are_dropped(self) -> None:
        made_up = {
            "quote": "I am so deeply sorry for all the trouble",
            "start": 16.5,
            "end": 20.0,
            "speaker": "agent",
        }
        wrong_side = {"quote": "I understand", "start": 16.5, "end": 20.0, "speaker": "customer"}
        answer = good_answer(empathy={"shown": True, "evidence": [made_up, wrong_side]})
        answer["sentiment_analysis"]["evidence"] = [
            {**answer["sentiment_analysis"]["evidence"][0], "start": 2.0, "end": 3.0}
        ]
        result = await score(compliant_call(), llm=ScriptedLLM(answer), call_direction="outbound")
        empathy = result.results["quality"]["empathy"]
        assert [e["quote"] for e in empathy["evidence"]] == ["I understand"]  # the rule's own match only
        assert empathy["evidence"][0]["speaker"] == "agent" and empathy["confidence"] == 0.35
        sentiment = result.results["quality"]["sentiment_analysis"]
        assert sentiment["evidence"] == [] and sentiment["confidence"] == 0.35
        quotes = [e["quote"] for c in checks(result) for e in c["evidence"]]
        assert "I am so deeply sorry for all the trouble" not in quotes

    async def test_a_b_speakers_are_mapped(self) -> None:
        t = call(
            seg("A", 0.0, "Hello?"),
            seg(
                "B",
                1.5,
                "Hi, my name is Laura from Acme. This call may be recorded. I'm calling about your loan.",
            ),
            seg("A", 9.0, "Oh, okay, thank you."),
        )
        answer = good_answer(
            empathy={
                "shown": True,
                "evidence": [{"quote": "my name is Laura", "start": 1.5, "end": 8.0, "speaker": "agent"}],
            }
        )
        result = await score(t, llm=ScriptedLLM(answer), call_direction="outbound")
        assert result.roles_inferred is True
        assert result.results["quality"]["empathy"]["evidence"][0]["speaker"] == "B"
        assert result.results["compliance"]["identity_verification"]["confidence"] < 0.8


class TestReAsk:
    async def test_invalid_json_then_valid(self) -> None:
        llm = ScriptedLLM(LLMOutputInvalid("Expecting value: line 1 column 1"), good_answer())
        result = await score(compliant_call(), llm=llm, call_direction="outbound")
        assert result.llm_status == "ok" and result.llm_attempts == 2 and len(llm.calls) == 2
        retry = llm.calls[1][0][-1]
        assert retry.role == "user" and "rejected" in retry.content and "Expecting value" in retry.content
        assert result.results["quality"]["sentiment_analysis"]["status"] == "evaluated"

    async def test_schema_violation_then_valid(self) -> None:
        bad = good_answer(coaching={"recommendations": [], "customer_effort_score": 9})
        llm = ScriptedLLM(bad, good_answer())
        result = await score(compliant_call(), llm=llm, call_direction="outbound")
        assert result.llm_attempts == 2 and result.results["coaching"]["customer_effort_score"] == 1
        assert "customer_effort_score" in llm.calls[1][0][-1].content


class TestDegraded:
    async def test_always_invalid_still_completes(self) -> None:
        llm, t = ScriptedLLM(LLMOutputInvalid("not JSON")), compliant_call()
        result = await score(t, llm=llm, call_direction="outbound")
        assert_contract_shape(result, t)
        assert len(llm.calls) == 2 and result.llm_degraded is True and result.llm_status == "degraded"
        assert result.llm_error and "not JSON" in result.llm_error
        q = result.results["quality"]
        assert (
            q["sentiment_analysis"]["status"] == "unavailable" and q["sentiment_analysis"]["confidence"] == 0
        )
        assert q["sentiment_analysis"]["reason"] == "LLM answer invalid after 2 attempt(s)"
        assert (q["empathy"]["shown"], q["empathy"]["source"]) == (True, "rule")
        cs = q["call_structure"]
        assert (cs["opening"], cs["resolution"], cs["closing"], cs["source"]) == (True, None, True, "rule")
        assert result.results["coaching"]["customer_effort_score"] is None
        assert (
            result.summary_source == "rule" and "identified themselves at 1.6 s" in result.results["summary"]
        )

    async def test_attempts_setting(self) -> None:
        llm = ScriptedLLM({"not": "valid"})
        result = await score(compliant_call(), llm=llm, call_direction="outbound", llm_attempts=3)
        assert len(llm.calls) == 3 and result.llm_attempts == 3 and result.llm_degraded

    async def test_no_llm_configured(self) -> None:
        t = compliant_call(words=False)
        result = await score(t, llm=None, call_direction="outbound")
        assert_contract_shape(result, t)
        assert (result.llm_status, result.llm_degraded, result.llm_model) == ("not_configured", True, None)
        assert result.results["quality"]["sentiment_analysis"]["reason"] == "no LLM configured"

    async def test_rule_recommendations_when_flagged(self) -> None:
        t = call(seg("agent", 0.0, "Hello. Calm down, you have to pay."), seg("customer", 4.0, "What?"))
        result = await score(t, llm=None, call_direction="outbound")
        assert_contract_shape(result, t)
        assert "no LLM configured" in result.results["compliance"]["mandatory_disclosures"]["reason"]
        recs = result.results["coaching"]["recommendations"]
        assert all(r["source"] == "rule" for r in recs)
        assert [r["category"] for r in recs] == ["compliance"] * 4 + ["communication"]  # high priority first
        assert (
            "State your name" in recs[0]["recommendation"]
            and "Balance the conversation" in recs[-1]["recommendation"]
        )

    async def test_transient_backend_failure_propagates(self) -> None:
        with pytest.raises(InferenceError):
            await score(compliant_call(), llm=ScriptedLLM(InferenceError("busy")), call_direction="outbound")


class TestLevels:
    async def test_compliance_level_asks_no_llm_when_nothing_is_missing(self) -> None:
        llm, t = ScriptedLLM(good_answer()), compliant_call()
        result = await score(t, llm=llm, call_direction="outbound", level="compliance")
        assert_contract_shape(result, t)
        assert llm.calls == [] and result.llm_status == "skipped" and result.llm_degraded is False
        assert all(c["status"] == "not_applicable" for c in result.results["quality"].values())
        coaching = result.results["coaching"]
        assert coaching["status"] == "not_applicable" and coaching["recommendations"] == []
        assert result.results["compliance"]["identity_verification"]["verified"] is True
        summary = result.results["summary"]
        assert (
            "call_recording_notice" in summary
            and "The agent spoke" not in summary
            and "Interruptions" not in summary
        )

    async def test_paraphrased_disclosure(self) -> None:
        t = call(
            seg(
                "agent",
                0.0,
                "Hi, my name is John from Acme. Just so you know, we keep a recording of this conversation.",
            ),
            seg("customer", 7.0, "Fine."),
        )
        quote = {
            "id": "call_recording_notice",
            "quote": "we keep a recording of this conversation",
            "start": 0.0,
            "end": 6.5,
        }
        llm = ScriptedLLM({"paraphrased_disclosures": [quote]})
        result = await score(t, llm=llm, call_direction="inbound", level="compliance")
        [(_, schema, _)] = llm.calls
        assert schema["required"] == ["paraphrased_disclosures"]
        disc = result.results["compliance"]["mandatory_disclosures"]
        assert disc["read"] is True and disc["matched_disclosures"] == ["call_recording_notice"]
        assert disc["matched_by"] == {"call_recording_notice": "llm"} and disc["source"] == "llm"
        assert disc["evidence"][0]["quote"] == "we keep a recording of this conversation"

    async def test_fabricated_paraphrase_is_refused(self) -> None:
        t = call(seg("agent", 0.0, "Hi, my name is John from Acme."), seg("customer", 3.0, "Fine."))
        quote = {
            "id": "call_recording_notice",
            "quote": "this call is recorded for training",
            "start": 0.0,
            "end": 2.0,
        }
        result = await score(
            t,
            llm=ScriptedLLM({"paraphrased_disclosures": [quote]}),
            call_direction="inbound",
            level="compliance",
        )
        disc = result.results["compliance"]["mandatory_disclosures"]
        assert disc["read"] is False and disc["missing_disclosures"] == ["call_recording_notice"]

    async def test_unknown_level(self) -> None:
        with pytest.raises(ValueError):
            await score(compliant_call(), level="gold")  # type: ignore[arg-type]


class TestEdgeCases:
    async def test_empty_recording(self) -> None:
        llm, t = ScriptedLLM(good_answer()), call(duration=30.0)
        result = await score(t, llm=llm)
        assert_contract_shape(result, t)
        assert llm.calls == [] and all(
            c["status"] != "evaluated" for c in result.results["compliance"].values()
        )
        assert result.results["summary"] == "No speech was found in the recording (30 s)."

    async def test_llm_text_never_carries_long_numbers(self) -> None:
        answer = good_answer(summary="The customer read the card 4111 1111 1111 1111 aloud.")
        result = await score(compliant_call(), llm=ScriptedLLM(answer), call_direction="outbound")
        assert result.results["summary"] == "The customer read the card [CREDIT_CARD] aloud."
