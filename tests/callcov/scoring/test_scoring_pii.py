"""Issue 13, optional PII redaction (``redact_pii``): each policy's recogniser finds what ASR writes
for names, phone numbers, emails, street addresses and dates of birth, and leaves look-alikes alone."""

from __future__ import annotations

import pytest
from scoring_factory import call, seg

from callcov.inference.transcript import Segment
from callcov.scoring.pii import POLICIES
from callcov.scoring.redaction import redact_transcript

ALL = POLICIES


def redacted(*segments: Segment, policies: tuple[str, ...] = ALL) -> list[str]:
    return [s.text for s in redact_transcript(call(*segments), policies).segments]


def one(text: str, policies: tuple[str, ...] = ALL, speaker: str = "customer") -> str:
    return redacted(seg(speaker, 0.0, text), policies=policies)[0]


class TestNames:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (
                "Hello, my name is John Smith, how can I help?",
                "Hello, my name is [PERSON_NAME], how can I help?",
            ),
            ("Hi, this is Maria from Acme Bank.", "Hi, this is [PERSON_NAME] from Acme Bank."),
            ("I'm Priya Patel calling about my bill.", "I'm [PERSON_NAME] calling about my bill."),
            ("You're speaking with Tom.", "You're speaking with [PERSON_NAME]."),
            ("Thank you, Mr. Okafor.", "Thank you, Mr. [PERSON_NAME]."),
            ("my name is john and I need help", "my name is [PERSON_NAME] and I need help"),
        ],
    )
    def test_after_a_trigger(self, text: str, expected: str) -> None:
        assert one(text, ("person_name",)) == expected

    def test_later_mentions_of_a_name_are_redacted_too(self) -> None:
        texts = redacted(
            seg("agent", 0.0, "Good morning, my name is John."),
            seg("customer", 3.0, "Hi John, thanks. John's colleague called me."),
            policies=("person_name",),
        )
        assert texts == [
            "Good morning, my name is [PERSON_NAME].",
            "Hi [PERSON_NAME], thanks. [PERSON_NAME] colleague called me.",
        ]

    @pytest.mark.parametrize(
        "text",
        [
            "This is Acme Bank, how can I help?",  # an organisation
            "I'm calling about my bill.",
            "I'm sorry to hear that.",
            "This is a recorded line.",
            "I am Not sure about that.",
            "my name is not important",
            "The Smith account is overdue.",  # a capitalised word never introduced as a name
            "Yes, it is Monday.",
            "I was speaking with someone yesterday.",
            "You're speaking with customer service.",
        ],
    )
    def test_look_alikes(self, text: str) -> None:
        assert one(text, ("person_name",)) == text


class TestPhoneNumbers:
    @pytest.mark.parametrize(
        "text",
        [
            "My phone number is 555 123 4567.",
            "Call me back on five five five, one two three, four five six seven.",
            "You can reach me at 555-0199 any time.",
            "It's 415-555-2671.",  # grouped 3-3-4, no keyword
            "my mobile is oh seven seven double oh nine eight one two three four",
        ],
    )
    def test_found(self, text: str) -> None:
        out = one(text, ("phone_number",))
        assert "[PHONE_NUMBER]" in out, out
        assert not any(c.isdigit() for c in out)

    @pytest.mark.parametrize(
        "text",
        [
            "Your order number is 555 123 4567.",
            "The reference is 4151234567.",
            "It came to 1234567 dollars.",
            "I was born in nineteen eighty five.",
            "We have 12 items and 3 boxes.",
            "My zip code is 90210.",
        ],
    )
    def test_look_alikes(self, text: str) -> None:
        assert one(text, ("phone_number",)) == text

    def test_a_leading_oh_is_part_of_the_number(self) -> None:
        assert one(
            "my mobile is oh seven seven double oh nine eight one two three four", ("phone_number",)
        ) == ("my mobile is [PHONE_NUMBER]")

    def test_a_card_number_stays_a_card(self) -> None:
        out = one("My credit card number is 4111 1111 1111 1111.")
        assert out == "My credit card number is [CREDIT_CARD]."


class TestEmails:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("It's john.smith@example.com, thanks.", "It's [EMAIL_ADDRESS], thanks."),
            ("My email is john dot smith at gmail dot com.", "My email is [EMAIL_ADDRESS]."),
            (
                "Send it to j_doe42 at mail dot example dot co dot uk please",
                "Send it to [EMAIL_ADDRESS] please",
            ),
            ("my email is mary jones at outlook.com", "my email is [EMAIL_ADDRESS]"),
        ],
    )
    def test_found(self, text: str, expected: str) -> None:
        assert one(text, ("email_address",)) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "I'm at home right now.",
            "We met at the office on Main.",
            "Look at the website, dot com is in the name.",
            "I'll be at lunch dot until two.",
        ],
    )
    def test_look_alikes(self, text: str) -> None:
        assert one(text, ("email_address",)) == text


class TestLocations:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("I live at 221 Baker Street, London.", "I live at [LOCATION], London."),
            ("It's twelve Oak Tree Lane apartment four.", "It's [LOCATION]."),
            ("Ship it to 1600 Pennsylvania Avenue.", "Ship it to [LOCATION]."),
            ("My address is 42 West 3rd Road suite 200 thanks", "My address is [LOCATION] thanks"),
        ],
    )
    def test_found(self, text: str, expected: str) -> None:
        assert one(text, ("location",)) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "I waited 20 minutes on the road.",
            "We have 3 court dates.",
            "Take the second street on the left.",
            "I drive 5 miles to work.",
        ],
    )
    def test_look_alikes(self, text: str) -> None:
        assert one(text, ("location",)) == text


class TestDatesOfBirth:
    def test_the_answer_to_the_question(self) -> None:
        texts = redacted(
            seg("agent", 0.0, "Can you please confirm your date of birth?"),
            seg("customer", 3.0, "Sure, it is the fourth of July, nineteen eighty five."),
            policies=("date_of_birth",),
        )
        assert texts[1] == "Sure, it is the [DATE_OF_BIRTH]."

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("My date of birth is 04/07/1985.", "My date of birth is [DATE_OF_BIRTH]."),
            ("I was born on March 3rd, 1990.", "I was born on [DATE_OF_BIRTH]."),
            ("DOB twelve December two thousand and three", "DOB [DATE_OF_BIRTH]"),
            ("What is your birthday? It's May third.", "What is your birthday? It's [DATE_OF_BIRTH]."),
            ("I was born in nineteen seventy two in Ohio.", "I was born in [DATE_OF_BIRTH] in Ohio."),
        ],
    )
    def test_found(self, text: str, expected: str) -> None:
        assert one(text, ("date_of_birth",)) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "The payment is due on the fourth of July.",  # a date, no birth keyword
            "I was born in Chicago.",
            "My birthday? Give me a second.",
            "The contract started in March 2020.",
            "When is your birthday? I may be wrong about it.",
        ],
    )
    def test_look_alikes(self, text: str) -> None:
        assert one(text, ("date_of_birth",)) == text


class TestPolicies:
    TEXT = "My name is Ana Lima, email ana at lima dot com, phone 555 123 4567."

    def test_only_the_requested_policies(self) -> None:
        assert (
            one(self.TEXT, ("email_address",))
            == "My name is Ana Lima, email [EMAIL_ADDRESS], phone 555 123 4567."
        )
        assert one(self.TEXT, ()) == self.TEXT

    def test_all_policies_and_their_redactions(self) -> None:
        transcript = redact_transcript(call(seg("customer", 0.0, self.TEXT)), ALL)
        assert (
            transcript.segments[0].text
            == "My name is [PERSON_NAME], email [EMAIL_ADDRESS], phone [PHONE_NUMBER]."
        )
        assert [r.type for r in transcript.redactions] == ["person_name", "email_address", "phone_number"]
        assert all(r.last4 is None and r.end > r.start for r in transcript.redactions)

    def test_banking_information_is_a_no_op_alias(self) -> None:
        text = "The account number is 9876 5432 10 and my name is Ana."
        assert (
            one(text, ("banking_information",))
            == "The account number is [ACCOUNT_NUMBER] and my name is Ana."
        )

    def test_idempotent(self) -> None:
        once = redact_transcript(call(seg("customer", 0.0, self.TEXT)), ALL)
        assert redact_transcript(once, ALL) == once
