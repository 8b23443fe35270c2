"""Sensitive data, interruptions, talk metrics, roles on A/B transcripts, and not_applicable cases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scoring_factory import call, seg

from callcov.inference.transcript import Transcript
from callcov.scoring import load_rubric
from callcov.scoring.redaction import redact_transcript
from callcov.scoring.sensitive import luhn_valid, mask, sensitive_data
from callcov.scoring.timing import interruptions, talk_metrics
from callcov.scoring.view import build_view


def view_of(transcript: Transcript, direction: str | None = "outbound"):  # type: ignore[no-untyped-def]
    return build_view(transcript, load_rubric(), direction)


def sensitive(*segments: Any) -> dict[str, Any]:
    return sensitive_data(view_of(redact_transcript(call(*segments))))


class TestLuhn:
    @pytest.mark.parametrize(
        "number", ["4111111111111111", "5500005555555559", "378282246310005", "6011111111111117"]
    )
    def test_valid(self, number: str) -> None:
        assert luhn_valid(number)

    @pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678"])
    def test_invalid(self, number: str) -> None:
        assert not luhn_valid(number)

    def test_redaction(self) -> None:
        assert mask("credit_card", "1111") == "**** **** **** 1111"
        assert mask("ssn", "6789") == "***-**-6789"
        assert mask("account_number", "5678") == "****5678"
        assert mask("credit_card_cvv", None) == "***"


class TestCards:
    @pytest.mark.parametrize(
        "spoken",
        [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "four one one one one one one one one one one one one one one one",
            "four one double one, one one one one, one one one one, triple one one",
        ],
    )
    def test_valid_card_is_found_and_redacted(self, spoken: str) -> None:
        check = sensitive(
            seg("agent", 0.0, "Can I take the card?"), seg("customer", 2.0, f"Sure, it is {spoken}. Thanks.")
        )
        assert check["shared"] is True
        [instance] = check["instances"]
        assert instance["type"] == "credit_card" and instance["text"] == "**** **** **** 1111"
        assert instance["speaker"] == "customer" and 2.0 < instance["start"] < instance["end"]
        assert check["evidence"] == [
            {"quote": "Sure, it is", "start": 2.0, "end": 3.0, "speaker": "customer"}
        ]
        dumped = json.dumps(check)
        assert "4111" not in dumped and "one one one" not in dumped

    def test_invalid_luhn_is_not_a_card(self) -> None:
        check = sensitive(seg("customer", 0.0, "My reference is 4111 1111 1111 1112."))
        assert check["shared"] is False and check["instances"] == []

    def test_after_a_card_keyword_a_failed_checksum_still_counts(self) -> None:
        """The transcript lost a digit group (12 digits) or garbled one (bad checksum)."""
        for said in ("4242 4242 4242", "4111 1111 1111 1112"):
            check = sensitive(seg("customer", 0.0, f"My card number is {said}."))
            [instance] = check["instances"]
            assert instance["type"] == "credit_card" and instance["text"].endswith(said[-4:])
        short = sensitive(seg("customer", 0.0, "My card number ends in 4242 4242."))
        assert short["shared"] is False

    def test_card_followed_by_expiry(self) -> None:
        check = sensitive(seg("customer", 0.0, "It's 4111 1111 1111 1111, 12 27."))
        assert [i["type"] for i in check["instances"]] == ["credit_card"]

    def test_oh_before_the_number_is_not_a_digit(self) -> None:
        check = sensitive(
            seg("customer", 0.0, "Oh four one one one one one one one one one one one one one one one")
        )
        assert [i["text"] for i in check["instances"]] == ["**** **** **** 1111"]


class TestSsnAndAccounts:
    def test_formatted_ssn(self) -> None:
        [instance] = sensitive(seg("customer", 0.0, "It is 123-45-6789."))["instances"]
        assert (instance["type"], instance["text"]) == ("ssn", "***-**-6789")

    def test_spoken_ssn_after_the_question(self) -> None:
        check = sensitive(
            seg("agent", 0.0, "What is your social security number?"),
            seg("customer", 3.0, "one two three four five six seven eight nine"),
        )
        assert [(i["type"], i["text"]) for i in check["instances"]] == [("ssn", "***-**-6789")]
        assert check["evidence"] == []  # no words but digits in that segment: nothing quotable

    def test_nine_digits_without_context_are_not_an_ssn(self) -> None:
        assert sensitive(seg("customer", 0.0, "The code was 123456789 I think."))["shared"] is False

    def test_account_number(self) -> None:
        [instance] = sensitive(seg("customer", 0.0, "My account number is 12345678 okay?"))["instances"]
        assert (instance["type"], instance["text"]) == ("account_number", "****5678")

    def test_amounts_are_not_account_numbers(self) -> None:
        assert sensitive(seg("agent", 0.0, "Your account balance is $1,234.56 today."))["shared"] is False


def interrupting_call(agent_cuts: int = 0, *, overlap: float = 1.0) -> Transcript:
    """A customer speaking 4 s turns; the agent starts ``overlap`` s before each of the first ``agent_cuts``
    turns ends."""
    segments = [seg("agent", 0.0, "Hello, my name is John from Acme, how are you?")]
    t = 4.0
    for n in range(4):
        segments.append(
            seg(
                "customer", t, "well I have been waiting for weeks now and nobody called me back", end=t + 4.0
            )
        )
        start = t + 4.0 - overlap if n < agent_cuts else t + 4.5
        segments.append(seg("agent", start, "I am sorry about that, let me check."))
        t = start + 4.0
    return call(*segments)


class TestInterruptions:
    def test_none(self) -> None:
        check = interruptions(view_of(interrupting_call(0)))
        assert (check["total"], check["agent_interruptions"], check["flagged"]) == (0, 0, False)

    def test_agent_interrupts_three_times(self) -> None:
        check = interruptions(view_of(interrupting_call(3)))
        assert (check["agent_interruptions"], check["customer_interruptions"], check["flagged"]) == (
            3,
            0,
            True,
        )
        assert len(check["evidence"]) == 3 and check["evidence"][0]["speaker"] == "agent"
        assert check["evidence"][0]["quote"] == "I am sorry about that, let me check"

    def test_small_overlap_is_tolerated(self) -> None:
        assert interruptions(view_of(interrupting_call(3, overlap=0.2)))["agent_interruptions"] == 0

    def test_customer_interrupts_and_backchannel_is_ignored(self) -> None:
        t = call(
            seg("agent", 0.0, "Let me explain the new terms of your contract in detail now", end=6.0),
            seg("customer", 2.0, "Mm-hmm."),
            seg("customer", 4.0, "No wait, I never agreed to that."),
        )
        check = interruptions(view_of(t))
        assert (check["customer_interruptions"], check["agent_interruptions"]) == (1, 0)

    def test_mono_turns_lower_the_confidence(self) -> None:
        t = interrupting_call(3)
        mono = t.model_copy(update={"diarization": "turns"})
        assert interruptions(view_of(mono))["confidence"] < interruptions(view_of(t))["confidence"]
        assert interruptions(view_of(mono))["reason"]


class TestTalkMetrics:
    def test_long_silence_between_turns(self) -> None:
        t = call(
            seg("agent", 0.0, "Hello, my name is John, one moment please.", end=3.0, words=False),
            seg("customer", 15.5, "Hello? Are you still there?", end=17.0, words=False),
            seg("agent", 17.5, "Yes, sorry for the wait.", end=19.0, words=False),
            duration=20.0,
        )
        check = talk_metrics(view_of(t))
        assert check["longest_silence_s"] == 12.5 and check["longest_silence_start"] == 3.0
        assert check["long_silence_flagged"] is True and check["flagged"] is True
        assert check["total_silence_s"] == 13.5  # 12.5 s gap plus 1 s trailing silence (19-20)

    def test_leading_and_trailing_silence(self) -> None:
        t = call(
            seg("agent", 11.0, "Hello?", end=12.0, words=False),
            seg("customer", 12.5, "Hi.", end=13.0, words=False),
            duration=30.0,
        )
        check = talk_metrics(view_of(t))
        assert check["longest_silence_s"] == 17.0 and check["longest_silence_start"] == 13.0
        assert check["total_silence_s"] == 28.0

    def test_talk_ratio(self) -> None:
        t = call(seg("agent", 0.0, "word " * 30, end=27.0), seg("customer", 27.2, "ok then", end=28.0))
        check = talk_metrics(view_of(t))
        assert check["agent_talk_ratio"] > 0.9 and check["talk_ratio_flagged"] is True
        assert check["agent_talk_ratio"] + check["customer_talk_ratio"] == pytest.approx(1.0)
        assert check["long_silence_flagged"] is False


class TestRolesAndNotApplicable:
    def test_a_b_roles_are_inferred(self) -> None:
        t = call(
            seg("A", 0.0, "Hello?"),
            seg("B", 1.5, "Hi, my name is Laura from Acme. This call may be recorded."),
            seg("A", 6.0, "Okay."),
        )
        view = view_of(t, "outbound")
        assert (view.agent, view.customer, view.roles_inferred) == ("B", "A", True)

    def test_a_b_tie_goes_to_first_speaker_on_inbound(self) -> None:
        view = view_of(call(seg("A", 0.0, "Yes."), seg("B", 1.0, "Okay.")), "inbound")
        assert view.agent == "A"

    def test_empty_call(self) -> None:
        view = view_of(call(duration=12.0))
        assert sensitive_data(view)["status"] == "not_applicable"
        assert talk_metrics(view)["status"] == "not_applicable"
        assert interruptions(view)["status"] == "not_applicable"

    def test_single_speaker_has_no_interruptions(self) -> None:
        check = interruptions(view_of(call(seg("agent", 0.0, "Hello? Hello?"))))
        assert check["status"] == "not_applicable" and check["flagged"] is False
