"""Phrase checks that tolerate a word misheard by the recogniser (rubric v3 ``phrase_matching``), and the
look-alike sentences that must not match. v2 (exact patterns) is the control: the near-misses fail there."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from scoring_factory import call, seg

from callcov.inference.transcript import Transcript
from callcov.scoring import load_rubric
from callcov.scoring.fuzzy import Tolerance, sound_key, tolerant_matches
from callcov.scoring.rubric import Rubric, compile_pattern
from callcov.scoring.scorer import compliance_section
from callcov.scoring.text import segment_text
from callcov.scoring.view import build_view

GREETING = "Hello, my name is John from Acme Bank."
NOTICE = "This call may be recorded for quality purposes."


def compliance(transcript: Transcript, version: str = "3") -> dict[str, Any]:
    return compliance_section(build_view(transcript, load_rubric("default", version), "outbound"))


def agent_says(*lines: str) -> Transcript:
    segments = [seg("agent", 0.5, GREETING), seg("customer", 4.0, "Hi.")]
    t = 6.0
    for line in lines:
        segments += [seg("agent", t, line), seg("customer", t + 6.0, "Okay.")]
        t += 9.0
    return call(*segments)


class TestNearMissPositives:
    @pytest.mark.parametrize(
        ("line", "quote"),
        [
            ("This call may be recorder for quality purposes.", "This call may be recorder"),
            ("Just so you know this call me be recorded today.", "this call me be recorded"),
            ("This call my be monitored for training.", "This call my be monitored"),
        ],
    )
    def test_disclosure(self, line: str, quote: str) -> None:
        t = agent_says(line)
        assert compliance(t, "2")["mandatory_disclosures"]["read"] is False  # exact patterns miss it
        disc = compliance(t)["mandatory_disclosures"]
        assert disc["read"] is True and disc["matched_disclosures"] == ["call_recording_notice"]
        assert disc["match"] == "approximate" and disc["approximate_disclosures"] == ["call_recording_notice"]
        [ev] = disc["evidence"]
        assert ev["quote"] == quote and ev["speaker"] == "agent" and ev["start"] >= 6.0  # verbatim, timed
        exact = compliance(agent_says(NOTICE))["mandatory_disclosures"]
        assert exact["match"] == "exact" and exact["approximate_disclosures"] == []
        assert disc["confidence"] < exact["confidence"]

    @pytest.mark.parametrize(
        ("line", "quote", "category"),
        [
            ("Well you half to pay this today.", "you half to", "coercive"),
            ("Sorry but there's nothing eye can do about it.", None, None),  # "eye": another first letter
            ("That is not my probem, sir.", "That is not my probem", "dismissive"),
            ("There is nothing I can do.", None, None),  # a different wording, not a near-miss
        ],
    )
    def test_prohibited(self, line: str, quote: str | None, category: str | None) -> None:
        t = agent_says(NOTICE, line)
        assert compliance(t, "2")["prohibited_phrases"]["used"] is False
        check = compliance(t)["prohibited_phrases"]
        if quote is None:
            assert check["used"] is False and check["match"] is None
            return
        [inst] = check["instances"]
        assert check["used"] is True and check["match"] == "approximate" and inst["match"] == "approximate"
        assert (inst["text"], inst["category"]) == (quote, category)
        assert check["evidence"][0]["quote"] == quote

    def test_exact_instance_is_marked_exact(self) -> None:
        check = compliance(agent_says(NOTICE, "You have to pay today."))["prohibited_phrases"]
        assert check["match"] == "exact" and check["instances"][0]["match"] == "exact"

    def test_identity(self) -> None:
        t = call(
            seg("agent", 0.5, "Good morning, you're talking too Sarah at Acme."),
            seg("customer", 4.0, "Hi."),
            seg("agent", 6.0, NOTICE),
        )
        assert compliance(t, "2")["identity_verification"]["verified"] is False
        ident = compliance(t)["identity_verification"]
        assert (ident["verified"], ident["agent_name"], ident["match"]) == (True, "Sarah", "approximate")
        assert ident["evidence"][0]["quote"] == "you're talking too Sarah"


class TestLookAlikesDoNotMatch:
    @pytest.mark.parametrize(
        "line",
        [
            "You have two options for the payment.",  # the misheard word would be the last one
            "I know you hate to wait.",  # "hate" neither sounds like "have" nor is a long word
            "Please come down to the branch.",  # "calm down" is two words: exact only
            "The guarantor signed the form.",  # one word: exact only
            "You must play the recording first.",
            "That is not a problem at all.",
            "There's nothing I can't do for you.",
            "We had a crab cake for lunch.",  # sounds like a one-word pattern: exact only
            "Let us risk it, free of charge.",
        ],
    )
    def test_prohibited(self, line: str) -> None:
        check = compliance(agent_says(NOTICE, line))["prohibited_phrases"]
        assert check["used"] is False, check["instances"]

    @pytest.mark.parametrize(
        "line",
        [
            "Your card may be recorded in the system.",
            "This call may be reported to your bank.",
            "The cold may be remembered.",
        ],
    )
    def test_disclosure(self, line: str) -> None:
        disc = compliance(agent_says(line))["mandatory_disclosures"]
        assert disc["read"] is False and disc["match"] is None

    def test_identity(self) -> None:
        t = call(seg("agent", 0.5, "Good morning, my game is fun."), seg("customer", 4.0, "Hi."))
        assert compliance(t)["identity_verification"]["verified"] is False


class TestMatcher:
    def test_sound_key(self) -> None:
        assert sound_key("half") == sound_key("have") != sound_key("hate")
        assert sound_key("me") == sound_key("may") == sound_key("my")
        assert sound_key("recorded") != sound_key("recorder")

    def test_errors_bounded_by_length(self) -> None:
        tol = Tolerance(max_word_errors=2, min_words=3)
        assert [tol.allowed(n) for n in (1, 2, 3, 5, 6, 9)] == [0, 0, 1, 1, 2, 2]

    def test_one_error_per_match(self) -> None:
        st = segment_text(seg("agent", 0.0, "this call me be recorder"), 0)
        pattern = compile_pattern("(this|the) call (may|might) be (recorded|monitored)")
        assert list(tolerant_matches(st, pattern, Tolerance(1, 3))) == []
        [m] = tolerant_matches(st, pattern, Tolerance(2, 2))
        assert m.approximate and m.span.quote == "this call me be recorder"

    def test_captured_name_is_the_transcripts_word(self) -> None:
        st = segment_text(seg("agent", 0.0, "my nam is Jon"), 0)
        [m] = tolerant_matches(st, compile_pattern("my name is (?P<name>[a-z]+)"), Tolerance(1, 3))
        assert m.groups == {"name": "jon"} and m.span.quote == "my nam is Jon"

    @pytest.mark.parametrize(
        "setting", [{"min_words": 1}, {"max_word_errors": -1}, {"sections": ["sensitive_data"]}, {"x": 1}]
    )
    def test_setting_is_validated(self, setting: dict[str, Any]) -> None:
        data = load_rubric().model_dump(by_alias=True)
        with pytest.raises(ValidationError):
            Rubric.model_validate({**data, "phrase_matching": setting})
        assert Rubric.model_validate({**data, "phrase_matching": {"sections": ["disclosures"]}})

    def test_v2_is_exact(self) -> None:
        assert load_rubric("default", "2").phrase_matching is None
        assert load_rubric("default", "3").phrase_matching is not None
