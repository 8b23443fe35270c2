"""Language-aware rubric: a call in a language the rubric's phrases do not cover gets not_applicable
phrase checks (never "missing"), while timing checks and the LLM's judgement still run."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from scoring_factory import ScriptedLLM, call, compliant_call, good_answer, seg

from callcov.inference.transcript import Transcript
from callcov.scoring import load_rubric, score
from callcov.scoring.rubric import Rubric

PHRASE_CHECKS = [
    "identity_verification",
    "mandatory_disclosures",
    "purpose_declaration",
    "prohibited_phrases",
]
REASON = "the rubric 'default' v3 covers en; the call is in es"


def spanish_call() -> Transcript:
    t = call(
        seg("agent", 0.5, "Hola, buenos días. Me llamo Juan, de Acme. Esta llamada puede ser grabada."),
        seg("customer", 6.0, "Hola Juan."),
        seg("agent", 7.5, "Le llamo por su solicitud de tarjeta. Lo entiendo, no se preocupe."),
        seg("customer", 12.0, "Muchas gracias, adiós."),
    )
    return t.model_copy(update={"language": "es"})


@pytest.mark.asyncio
class TestOtherLanguage:
    async def test_phrase_checks_not_applicable_without_llm(self) -> None:
        result = await score(spanish_call(), llm=None, call_direction="outbound")
        r = result.results
        for name in PHRASE_CHECKS:
            check = r["compliance"][name]
            assert check["status"] == "not_applicable" and check["reason"].startswith(REASON), name
        disc = r["compliance"]["mandatory_disclosures"]
        assert disc["read"] is None and disc["missing_disclosures"] == []
        assert disc["unchecked_disclosures"] == ["call_recording_notice"]
        assert r["quality"]["greeting"]["status"] == "not_applicable"
        for name in ("empathy", "call_structure"):  # their rule parts are phrase matches
            assert r["quality"][name]["status"] == "not_applicable" and REASON in r["quality"][name]["reason"]
        for name in ("interruptions", "talk_metrics"):
            assert r["quality"][name]["status"] == "evaluated"
        recs = r["coaching"]["recommendations"]
        assert all(rec["category"] != "compliance" for rec in recs), recs
        assert "Missing disclosures" not in r["summary"] and "did not identify" not in r["summary"]
        assert f"Phrase checks were not applied: {REASON}." in r["summary"]

    async def test_english_rubric_still_applies_to_en_variants(self) -> None:
        t = compliant_call().model_copy(update={"language": "en-US"})
        result = await score(t, llm=None, call_direction="outbound")
        assert all(result.results["compliance"][n]["status"] == "evaluated" for n in PHRASE_CHECKS)

    async def test_llm_still_judges_and_may_find_the_disclosure(self) -> None:
        quote = {
            "id": "call_recording_notice",
            "quote": "Esta llamada puede ser grabada",
            "start": 0.5,
            "end": 6.0,
        }
        answer = good_answer(
            empathy={
                "shown": True,
                "evidence": [{"quote": "Lo entiendo", "start": 7.5, "end": 11.0, "speaker": "agent"}],
            },
            sentiment_analysis={**good_answer()["sentiment_analysis"], "evidence": []},
            call_structure={"opening": True, "resolution": True, "closing": True, "evidence": []},
            paraphrased_disclosures=[quote],
        )
        llm = ScriptedLLM(answer)
        result = await score(spanish_call(), llm=llm, call_direction="outbound")
        [(_, schema, _)] = llm.calls
        assert "paraphrased_disclosures" in schema["required"]
        r = result.results
        disc = r["compliance"]["mandatory_disclosures"]
        assert (disc["status"], disc["read"], disc["source"]) == ("evaluated", True, "llm")
        assert disc["matched_by"] == {"call_recording_notice": "llm"} and disc["unchecked_disclosures"] == []
        assert disc["evidence"][0]["quote"] == "Esta llamada puede ser grabada"
        assert r["quality"]["empathy"]["shown"] is True and r["quality"]["empathy"]["source"] == "llm"
        assert r["quality"]["call_structure"]["status"] == "evaluated"
        assert r["compliance"]["identity_verification"]["status"] == "not_applicable"

    async def test_llm_not_finding_it_never_reports_missing(self) -> None:
        llm = ScriptedLLM({"paraphrased_disclosures": []})
        result = await score(spanish_call(), llm=llm, call_direction="outbound", level="compliance")
        disc = result.results["compliance"]["mandatory_disclosures"]
        assert (disc["status"], disc["read"], disc["missing_disclosures"]) == ("not_applicable", None, [])
        assert len(llm.calls) == 1


class TestRubricLanguages:
    def test_v3_is_english_and_v2_any_language(self) -> None:
        assert load_rubric("default", "3").languages == ["en"]
        assert load_rubric("default", "2").languages is None

    @pytest.mark.parametrize("languages", [["english"], ["EN"], ["xx"], []])
    def test_codes_are_validated(self, languages: list[str]) -> None:
        data = load_rubric().model_dump(by_alias=True)
        with pytest.raises(ValidationError):
            Rubric.model_validate({**data, "languages": languages})
        Rubric.model_validate({**data, "languages": ["en", "es"]})
