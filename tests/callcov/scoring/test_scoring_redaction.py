"""Issue 13: card numbers, SSNs and account numbers are redacted from the transcript itself (text,
segments, words), detection survives ASR errors, and look-alike numbers are left alone."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from scoring_factory import ScriptedLLM, call, compliant_call, good_answer, seg

from callcov.inference.transcript import Transcript
from callcov.scoring import load_rubric
from callcov.scoring.redaction import redact_transcript, scrub_text
from callcov.scoring.scorer import score
from callcov.scoring.sensitive import sensitive_data
from callcov.scoring.view import build_view

CARD = "4111 1111 1111 1111"
LONG_DIGITS = re.compile(r"\d(?:[\s\-]*\d){5,}")
SPOKEN = re.compile(
    r"\b(?:(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple)\W+){6,}", re.I
)


def found(*segments: Any) -> list[tuple[str, str | None]]:
    redacted = redact_transcript(call(*segments))
    return [(r.type, r.last4) for r in redacted.redactions]


def assert_clean(blob: str) -> None:
    assert not LONG_DIGITS.search(blob), LONG_DIGITS.search(blob)
    assert not SPOKEN.search(blob), SPOKEN.search(blob)


class TestTranscriptRedaction:
    def test_text_segments_and_words_carry_a_marker_with_the_word_times(self) -> None:
        raw = call(
            seg("agent", 0.0, "Can I have the card number?"),
            seg("customer", 2.0, f"Sure, it is {CARD}, thanks."),
        )
        redacted = redact_transcript(raw)
        customer = redacted.segments[1]
        assert customer.text == "Sure, it is [CREDIT_CARD], thanks."
        marker = next(w for w in customer.words if "[CREDIT_CARD]" in w.text)
        digits = raw.segments[1].words[3:7]
        assert (marker.start, marker.end) == (digits[0].start, digits[-1].end)
        [r] = redacted.redactions
        assert (r.type, r.last4, r.speaker, r.start, r.end) == (
            "credit_card", "1111", "customer", digits[0].start, digits[-1].end,
        )  # fmt: skip
        assert_clean(json.dumps(redacted.public()))
        assert "Customer: Sure, it is [CREDIT_CARD], thanks." in redacted.text

    def test_spoken_ssn_and_account(self) -> None:
        redacted = redact_transcript(
            call(
                seg("agent", 0.0, "And your social security number?"),
                seg("customer", 2.0, "one two three, four five, six seven eight nine."),
                seg("agent", 6.0, "Which account should we debit?"),
                seg("customer", 8.0, "Account number 9876 5432 10."),
            )
        )
        assert [(r.type, r.last4) for r in redacted.redactions] == [
            ("ssn", "6789"),
            ("account_number", "3210"),
        ]
        assert redacted.segments[1].text == "[SSN]."
        assert_clean(json.dumps(redacted.public()))

    def test_without_word_times(self) -> None:
        redacted = redact_transcript(call(seg("customer", 0.0, f"my card is {CARD} ok", words=False)))
        assert redacted.segments[0].text == "my card is [CREDIT_CARD] ok"
        assert redacted.segments[0].words == []
        assert redacted.redactions[0].start > 0.0

    def test_idempotent(self) -> None:
        once = redact_transcript(call(seg("customer", 0.0, f"card {CARD}")))
        assert redact_transcript(once) == once

    def test_cvv_and_expiry_near_a_card(self) -> None:
        kinds = found(
            seg("agent", 0.0, "What is the card number?"),
            seg("customer", 2.0, f"{CARD}."),
            seg("agent", 9.0, "And the expiry date?"),
            seg("customer", 11.0, "oh four twenty seven."),
            seg("agent", 14.0, "And the three digit security code on the back?"),
            seg("customer", 17.0, "seven three one."),
        )
        assert kinds == [
            ("credit_card", "1111"), ("credit_card_expiration", None), ("credit_card_cvv", None),
        ]  # fmt: skip


class TestCardDetails:
    @pytest.mark.parametrize(
        "answer", ["329 and the code is 324.", "12 27, and the code is 568.", "1129 and the code in 548."]
    )
    def test_expiry_then_cvv_when_both_were_asked(self, answer: str) -> None:
        """Whisper wrote "March 2029" as "329": after "the expiry date and the security code?" the
        first number that reads as a month and a year is the expiry, the next one the CVV."""
        kinds = found(
            seg("agent", 0.0, "Thank you. And the expiry date and the security code?"),
            seg("customer", 4.0, answer),
        )
        assert [k for k, _ in kinds] == ["credit_card_expiration", "credit_card_cvv"]


class TestAsrErrors:
    def test_twenty_one_digits_after_a_card_keyword(self) -> None:
        """Finding: Whisper wrote 21 digits for a 16-digit card and the check reported nothing."""
        assert found(seg("customer", 0.0, "My card number is 4111 11111 11111 111111.")) == [
            ("credit_card", "1111")
        ]

    def test_inserted_and_dropped_digits_without_a_checksum(self) -> None:
        for said in ("4111 1111 111 1111", "4111 1111 1111 11111", "4111 1111 1111 1112"):
            assert found(
                seg("agent", 0.0, "Can you read me the long number on the card?"), seg("customer", 3.0, said)
            ) == [("credit_card", said[-4:])], said

    def test_ssn_with_two_extra_digits(self) -> None:
        """Finding: an SSN that came back with two extra digits was missed."""
        assert found(
            seg("agent", 0.0, "Can you confirm your social security number?"),
            seg("customer", 3.0, "It is 123 45 678 912."),
        ) == [("ssn", "8912")]

    @pytest.mark.parametrize(
        "spoken",
        [
            "four one one one, one one one one, one one one one, one one one one",
            "forty one eleven, eleven eleven, eleven eleven, eleven eleven",
            "four one double one, double one double one, one one one one, triple one one",
            "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
            "4.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1",
        ],
    )
    def test_digits_spelled_as_words(self, spoken: str) -> None:
        assert found(seg("customer", 0.0, f"Sure it is {spoken}.")) == [("credit_card", "1111")]

    def test_oh_written_as_or_inside_a_number(self) -> None:
        assert found(
            seg("customer", 0.0, "My card number is double 5, 7 or 3, 1 2 3 4 5 6 7 8 9 0 1 2.")
        ) == [("credit_card", "9012")]

    def test_groups_split_across_segments(self) -> None:
        """A slow reading split by VAD, with the agent's backchannel in between."""
        redacted = redact_transcript(
            call(
                seg("agent", 0.0, "Go ahead with the card number."),
                seg("customer", 2.0, "4111 1111"),
                seg("agent", 3.5, "mhm"),
                seg("customer", 4.0, "1111 1111."),
            )
        )
        [r] = redacted.redactions
        assert (r.type, r.last4) == ("credit_card", "1111")
        assert [s.text for s in redacted.segments if s.speaker == "customer"] == [
            "[CREDIT_CARD]",
            "[CREDIT_CARD].",
        ]


class TestLookalikes:
    @pytest.mark.parametrize(
        "segments",
        [
            [("customer", "My order number is 1234 5678 9012 3456.")],
            [("agent", "Your confirmation number is 5500 0055 5555 5559 9.")],
            [("customer", "You can call me back at 555 123 4567.")],
            [("customer", "My phone number is five five five, one two three, four five six seven.")],
            [
                ("agent", "The amount due is 2400 dollars."),
                ("customer", "two thousand four hundred dollars?"),
            ],
            [("customer", "I was born on the fourth of July, nineteen eighty five.")],
            [("agent", "Your tracking number is 9400 1000 0000 0000 0000 00.")],
            [("agent", "The balance on the account is $1,234.56 today.")],
            [("customer", "The case id is 20241130.")],
        ],
    )
    def test_not_flagged(self, segments: list[tuple[str, str]]) -> None:
        segs = [seg(role, 4.0 * i, text) for i, (role, text) in enumerate(segments)]
        assert found(*segs) == []


class TestScoring:
    @pytest.mark.asyncio
    async def test_llm_quote_never_carries_the_card(self) -> None:
        """Finding: an LLM evidence quote carried the full card number into call_structure.evidence."""
        transcript = compliant_call()
        transcript.segments.append(seg("customer", 30.0, f"My card number is {CARD}."))
        quote = {"quote": f"My card number is {CARD}", "start": 30.0, "end": 33.0, "speaker": "customer"}
        answer = good_answer()
        answer["call_structure"]["evidence"] = [quote]
        answer["coaching"]["recommendations"][0]["recommendation"] = f"Never repeat {CARD} aloud."
        llm = ScriptedLLM(answer)
        result = await score(transcript, llm=llm, call_direction="outbound")
        assert_clean(json.dumps(result.results))
        assert CARD not in json.dumps([m.model_dump() for m in llm.calls[0][0]])  # nor does the prompt
        sensitive = result.results["compliance"]["sensitive_data"]
        assert sensitive["shared"] is True and sensitive["instances"][0]["text"] == "**** **** **** 1111"

    def test_check_reports_the_rubric_types_only(self) -> None:
        transcript = redact_transcript(call(seg("customer", 0.0, f"card {CARD}, expiry 12 27.")))
        v2 = sensitive_data(build_view(transcript, load_rubric("default", 2), None))
        v3 = sensitive_data(build_view(transcript, load_rubric("default", 3), None))
        assert [i["type"] for i in v2["instances"]] == ["credit_card"]
        assert [i["type"] for i in v3["instances"]] == ["credit_card", "credit_card_expiration"]

    def test_scrub_text(self) -> None:
        assert scrub_text(f"read {CARD} aloud") == "read [CREDIT_CARD] aloud"
        assert scrub_text("ref 12345678 ok") == "ref [redacted] ok"
        assert scrub_text("call at 5 pm") == "call at 5 pm"


def test_quotes_read_as_the_segment_text() -> None:
    """Whisper's words "risk" "-free" quote as "risk-free", and a quote may end with a marker."""
    segment = seg("agent", 0.0, "It is completely risk -free.")
    segment.text = "It is completely risk-free."
    redacted = redact_transcript(call(segment, seg("customer", 4.0, f"It is {CARD}")))
    view = build_view(redacted, load_rubric(), "outbound")
    assert view.texts[0].span(2, 4).quote == "completely risk-free"
    assert view.texts[1].span(0, 2).quote == "It is [CREDIT_CARD]"


def test_transcript_model_round_trips_redactions() -> None:
    redacted = redact_transcript(call(seg("customer", 0.0, f"card {CARD}")))
    assert Transcript.model_validate(redacted.model_dump(mode="json")) == redacted
