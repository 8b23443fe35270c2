"""verify_evidence: only quotes that occur in that speaker's segment at those times survive."""

from __future__ import annotations

from typing import Any

import pytest
from scoring_factory import compliant_call

from callcov.scoring import verify_evidence


def item(quote: Any, start: Any = 0.5, end: Any = 4.3, speaker: Any = "agent") -> dict[str, Any]:
    return {"quote": quote, "start": start, "end": end, "speaker": speaker}


class TestVerifyEvidence:
    def test_case_and_punctuation_insensitive_with_word_times(self) -> None:
        [ev] = verify_evidence(compliant_call(), [item("MY NAME IS JOHN SMITH!", 0.0, 9.0)])
        assert ev == {"quote": "My name is John Smith", "start": 1.55, "end": 3.25, "speaker": "agent"}

    def test_apostrophes_and_hyphens(self) -> None:
        [ev] = verify_evidence(compliant_call(), [item("im calling about", 6.0, 12.0)])
        assert ev["quote"] == "I'm calling about" and ev["start"] == 9.5

    @pytest.mark.parametrize(
        "bad",
        [
            item("My name is Jonathan"),  # not said
            item("my name is John", speaker="customer"),  # said by the other side
            item("my name is John", 30.0, 31.0),  # not at those times
            item("name is Jo"),  # part of a word
            item(""),  # nothing
            item(42),  # not a string
        ],
    )
    def test_dropped(self, bad: dict[str, Any]) -> None:
        assert verify_evidence(compliant_call(), [bad]) == []

    def test_tolerance_of_one_second(self) -> None:
        assert verify_evidence(compliant_call(), [item("Hi John", 5.9, 6.5, "customer")])
        assert verify_evidence(compliant_call(), [item("Hi John", 7.0, 8.0, "customer")]) == []
        assert verify_evidence(compliant_call(), [item("Hi John", 3.5, 4.1, "customer")])

    def test_missing_times_and_speaker_match_anywhere(self) -> None:
        [ev] = verify_evidence(compliant_call(), [{"quote": "have a great day"}])
        assert ev["speaker"] == "agent" and ev["start"] > 23.5

    def test_without_word_timestamps_times_are_interpolated_in_the_segment(self) -> None:
        [ev] = verify_evidence(compliant_call(words=False), [item("Acme Bank")])
        assert 0.5 < ev["start"] < ev["end"] <= 4.3 + 1e-6

    def test_duplicates_and_junk_items(self) -> None:
        items = [item("my name is John"), item("My name is John."), "junk", None]
        assert len(verify_evidence(compliant_call(), items)) == 1  # type: ignore[arg-type]
