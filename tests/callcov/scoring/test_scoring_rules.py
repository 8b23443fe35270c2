"""Deterministic compliance checks on hand-built transcripts (no LLM involved)."""

from __future__ import annotations

from typing import Any

import pytest
from scoring_factory import call, compliant_call, seg

from callcov.inference.transcript import Transcript
from callcov.scoring import load_rubric
from callcov.scoring.scorer import compliance_section
from callcov.scoring.view import build_view

NOTICE = "This call may be recorded for quality purposes."


def compliance(transcript: Transcript, direction: str | None = "outbound") -> dict[str, Any]:
    return compliance_section(build_view(transcript, load_rubric(), direction))


def assert_check_shape(check: dict[str, Any]) -> None:
    assert check["status"] in ("evaluated", "not_applicable", "unavailable")
    assert check["source"] in ("rule", "llm") and 0 <= check["confidence"] <= 1
    for item in check["evidence"]:
        assert set(item) == {"quote", "start", "end", "speaker"} and item["start"] <= item["end"]


class TestCompliantCall:
    @pytest.mark.parametrize("words", [True, False])
    def test_passes_every_requirement(self, words: bool) -> None:
        result = compliance(compliant_call(words=words))
        for check in result.values():
            assert_check_shape(check)
            assert check["status"] == "evaluated" and check["source"] == "rule"
        ident = result["identity_verification"]
        assert (ident["verified"], ident["flagged"], ident["agent_name"]) == (True, False, "John")
        assert (
            ident["evidence"][0]["quote"] == "My name is John" and ident["evidence"][0]["speaker"] == "agent"
        )
        if words:  # timed to the words "My name is John": the 4th to 7th words of the segment
            assert ident["timestamp"] == 1.55 and ident["evidence"][0]["end"] == 2.9
        else:  # interpolated inside the segment
            assert 0.5 < ident["timestamp"] < 4.3
        disc = result["mandatory_disclosures"]
        assert disc["read"] is True and disc["matched_disclosures"] == ["call_recording_notice"]
        assert disc["missing_disclosures"] == [] and disc["not_applicable_disclosures"] == ["mini_miranda"]
        purpose = result["purpose_declaration"]
        assert (purpose["disclosed"], purpose["interaction_number"], purpose["flagged"]) == (True, 2, False)
        assert (
            result["prohibited_phrases"]["used"] is False and result["prohibited_phrases"]["instances"] == []
        )
        assert result["sensitive_data"]["shared"] is False


class TestIdentity:
    def test_missing(self) -> None:
        t = call(seg("agent", 0.0, f"Hello. {NOTICE}"), seg("customer", 4.0, "Hi."))
        ident = compliance(t)["identity_verification"]
        assert (ident["verified"], ident["timestamp"], ident["flagged"]) == (False, None, True)
        assert ident["evidence"] == []

    def test_at_20_seconds_is_verified_but_flagged(self) -> None:
        t = call(
            seg("agent", 0.0, f"Hello. {NOTICE}"),
            seg("customer", 5.0, "Who is this?"),
            seg("agent", 20.0, "Sorry, this is Maria from Acme Bank."),
        )
        ident = compliance(t)["identity_verification"]
        assert (ident["verified"], ident["flagged"], ident["agent_name"]) == (True, True, "Maria")
        assert ident["timestamp"] == 20.35 and ident["evidence"][0]["quote"] == "this is Maria from"

    @pytest.mark.parametrize(
        ("text", "name"),
        [
            ("Good morning, Peter speaking.", "Peter"),
            ("Hi, you're speaking with Anna today.", "Anna"),
            ("Hello, I'm Tom from the billing team.", "Tom"),
            ("Hi, this is Sam at Acme.", "Sam"),
        ],
    )
    def test_phrasings(self, text: str, name: str) -> None:
        ident = compliance(call(seg("agent", 1.0, text)))["identity_verification"]
        assert ident["verified"] is True and ident["flagged"] is False and ident["agent_name"] == name

    @pytest.mark.parametrize(
        "text", ["Hello, who is speaking?", "Hi, this is a call about your order.", "I am calling from Acme."]
    )
    def test_not_an_identity(self, text: str) -> None:
        assert compliance(call(seg("agent", 1.0, text)))["identity_verification"]["verified"] is False

    def test_customer_saying_a_name_does_not_count(self) -> None:
        t = call(seg("agent", 0.0, "Hello."), seg("customer", 2.0, "Hi, my name is Bob."))
        assert compliance(t)["identity_verification"]["verified"] is False


class TestPurpose:
    def _turns(self, purpose_turn: int | None) -> Transcript:
        segments = []
        for n in range(1, 7):
            text = (
                "I'm calling about your overdue invoice." if n == purpose_turn else "Okay, one moment please."
            )
            segments += [seg("agent", n * 10.0, text), seg("customer", n * 10.0 + 5, "Sure.")]
        return call(*segments)

    def test_not_within_four_turns(self) -> None:
        purpose = compliance(self._turns(None))["purpose_declaration"]
        assert (purpose["disclosed"], purpose["interaction_number"], purpose["flagged"]) == (
            False,
            None,
            True,
        )

    def test_in_turn_five_is_flagged(self) -> None:
        purpose = compliance(self._turns(5))["purpose_declaration"]
        assert (purpose["disclosed"], purpose["interaction_number"], purpose["flagged"]) == (True, 5, True)
        assert purpose["evidence"][0]["start"] == 50.0

    def test_consecutive_agent_segments_are_one_turn(self) -> None:
        t = call(
            seg("agent", 0.0, "Hello."), seg("agent", 1.0, "Sorry, the line."), seg("agent", 2.0, "Hello again."),
            seg("agent", 3.0, "Still there?"), seg("agent", 5.0, "The reason for my call is your renewal."),
        )  # fmt: skip
        assert compliance(t)["purpose_declaration"]["interaction_number"] == 1

    def test_inbound_is_not_applicable(self) -> None:
        t = call(
            seg("agent", 0.0, "Thank you for calling Acme, how can I help?"),
            seg("customer", 3.0, "My card is blocked."),
        )
        purpose = compliance(t, "inbound")["purpose_declaration"]
        assert (
            purpose["status"] == "not_applicable"
            and purpose["flagged"] is False
            and purpose["disclosed"] is None
        )
        assert "inbound" in purpose["reason"]

    def test_unknown_direction_with_inbound_cue(self) -> None:
        t = call(
            seg("agent", 0.0, "Thank you for calling Acme, how can I help?"),
            seg("customer", 3.0, "My card is blocked."),
        )
        assert compliance(t, None)["purpose_declaration"]["status"] == "not_applicable"

    def test_unknown_direction_without_cue_is_flagged(self) -> None:
        t = call(seg("agent", 0.0, "Hello, Acme here."), seg("customer", 3.0, "Yes?"))
        purpose = compliance(t, None)["purpose_declaration"]
        assert purpose["status"] == "evaluated" and purpose["flagged"] is True


class TestDisclosures:
    def test_missing_recording_notice(self) -> None:
        t = call(seg("agent", 0.0, "Hello, my name is John. I'm calling about your order."))
        disc = compliance(t)["mandatory_disclosures"]
        assert disc["read"] is False and disc["missing_disclosures"] == ["call_recording_notice"]
        assert disc["matched_disclosures"] == [] and disc["evidence"] == []

    @pytest.mark.parametrize(
        "notice",
        [
            "Calls are monitored or recorded.",
            "Please note this call is being recorded.",
            "We may record it, it is recorded for training.",
        ],
    )
    def test_notice_variants(self, notice: str) -> None:
        disc = compliance(call(seg("agent", 0.0, notice)))["mandatory_disclosures"]
        assert disc["read"] is True, notice

    def test_notice_read_by_customer_does_not_count(self) -> None:
        t = call(seg("agent", 0.0, "Hello, my name is John."), seg("customer", 3.0, f"Hi. {NOTICE}"))
        assert compliance(t)["mandatory_disclosures"]["read"] is False

    def test_debt_call_needs_mini_miranda(self) -> None:
        t = call(seg("agent", 0.0, f"Hello, my name is John. {NOTICE} I'm calling about a past due balance."))
        disc = compliance(t)["mandatory_disclosures"]
        assert disc["missing_disclosures"] == ["mini_miranda"] and disc["read"] is False
        t = call(
            seg("agent", 0.0, f"{NOTICE} This is an attempt to collect a debt about your past due balance.")
        )
        assert compliance(t)["mandatory_disclosures"]["matched_disclosures"] == [
            "call_recording_notice",
            "mini_miranda",
        ]
        t = call(seg("agent", 0.0, f"{NOTICE} How can I help with your past due balance?"))
        assert compliance(t, "inbound")["mandatory_disclosures"]["not_applicable_disclosures"] == [
            "mini_miranda"
        ]


class TestProhibitedPhrases:
    def test_instances_with_times_and_category(self) -> None:
        t = call(
            seg("agent", 0.0, "Sir, calm down please."),
            seg("customer", 3.0, "Calm down? That's not my problem!"),
            seg("agent", 6.0, "You have to pay today, it's guaranteed to work."),
        )
        check = compliance(t)["prohibited_phrases"]
        assert check["used"] is True
        found = [(i["phrase"], i["category"], i["speaker"]) for i in check["instances"]]
        assert found == [
            ("calm down", "dismissive", "agent"),
            ("you have to", "coercive", "agent"),
            ("guaranteed", "misleading", "agent"),
        ]
        first = check["instances"][0]
        assert (first["text"], first["start"], first["end"]) == ("calm down", 0.35, 1.0)
        assert len(check["evidence"]) == 3

    def test_clean_call(self) -> None:
        assert (
            compliance(call(seg("agent", 0.0, "I can guide you through it.")))["prohibited_phrases"]["used"]
            is False
        )
