"""The scoring evaluation's corpus generator and metrics (``bench/scoring_*.py``, ``bench/wer.py``):
fast, no Whisper and no LLM."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))

from scoring_corpus import CallSpec, corpus, luhn_number, make_call, spoken_digits  # noqa: E402
from scoring_eval import script_transcript, summarise  # noqa: E402
from scoring_metrics import CHECKS, detected, evidence_items, prf, quote_verbatim  # noqa: E402
from wer import tokens, wer  # noqa: E402

from callcov.scoring.scorer import score  # noqa: E402
from callcov.scoring.sensitive import luhn_valid  # noqa: E402


class TestCorpus:
    def test_deterministic_from_the_seed(self) -> None:
        assert corpus(6, seed=5) == corpus(6, seed=5)
        assert corpus(6, seed=5) != corpus(6, seed=6)
        assert corpus(3, seed=5) == corpus(6, seed=5)[:3]  # a call does not depend on the corpus size

    def test_every_check_has_facts_of_both_kinds(self) -> None:
        calls = corpus(48)
        for check in CHECKS:
            if check == "identity_flagged":
                continue  # known after rendering
            values = {c.facts[check] for c in calls if check in c.facts}
            assert values == {True, False}, check

    def test_identity_timing_comes_from_the_rendered_turns(self) -> None:
        call = next(c for c in corpus(30) if c.identity_turn is not None and c.identity_turn > 0)
        starts = [float(i) for i in range(len(call.turns))]
        assert call.facts_after_render(starts)["identity_flagged"] is (starts[call.identity_turn] > 15)
        late = [20.0 * i for i in range(len(call.turns))]
        assert call.facts_after_render(late)["identity_flagged"] is True

    @pytest.mark.parametrize("style", ["plain", "grouped", "double"])
    def test_card_numbers_are_luhn_valid_and_spoken_digit_by_digit(self, style: str) -> None:
        import random

        number = luhn_number(random.Random(style), zeros_and_doubles=style == "double")
        assert luhn_valid(number) and len(number) == 16
        spoken = spoken_digits(number, (4, 4, 4, 4), style=style)
        assert "".join(tokens(spoken)) == number
        if style == "double":
            assert "double" in spoken and "oh" in spoken


class TestWer:
    def test_numbers_are_compared_as_digits(self) -> None:
        assert wer("Twelve twenty seven, and the code is three four five.", "1227 and the code is 345.") == 0
        assert wer("two thousand four hundred dollars", "$2,400") == 0
        assert tokens("double oh seven") == ["0", "0", "7"]

    def test_a_misheard_digit_is_one_error(self) -> None:
        assert wer("one two three four", "1 2 3 5") == pytest.approx(0.25)


class TestMetrics:
    def test_precision_recall_f1(self) -> None:
        m = prf([(True, True), (True, False), (False, True), (False, False), (False, None)])
        assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 2)
        assert m["precision"] == m["recall"] == m["f1"] == pytest.approx(0.5)
        assert prf([(False, False)])["f1"] is None

    def test_verbatim_quotes_need_text_speaker_and_time(self) -> None:
        segments = [{"speaker": "agent", "start": 0.0, "end": 3.0, "text": "Calm down, it is risk-free."}]
        assert quote_verbatim(segments, {"quote": "Calm down", "start": 0.1, "end": 0.8, "speaker": "agent"})
        assert not quote_verbatim(segments, {"quote": "risk -free", "start": 2, "end": 3, "speaker": "agent"})
        assert not quote_verbatim(segments, {"quote": "Calm down", "start": 9, "end": 10, "speaker": "agent"})
        assert not quote_verbatim(
            segments, {"quote": "Calm down", "start": 0, "end": 1, "speaker": "customer"}
        )

    def test_a_perfect_transcript_is_scored_against_its_facts(self) -> None:
        call = replace(make_call(13, 2), stereo=True)
        entry = {
            "turn_starts": [4.0 * i for i in range(len(call.turns))],
            "duration_s": 4.0 * len(call.turns),
        }
        transcript = script_transcript(call, entry)
        result = asyncio.run(score(transcript, llm=None, call_direction=call.direction))
        flags = detected(result.results)
        assert set(flags) == set(CHECKS)
        facts = call.facts_after_render(entry["turn_starts"])
        for check in ("greeting_missing", "closing_missing", "identity_flagged", "interruption"):
            assert flags[check] == facts[check], check
        quotes = list(evidence_items(result.results))
        segments = [s.model_dump() for s in transcript.segments]
        assert quotes and all(quote_verbatim(segments, q) for q in quotes)

    def test_summary_splits_conditions_and_layouts(self) -> None:
        def row(condition: str, stereo: bool, flag: bool) -> dict[str, object]:
            facts = dict.fromkeys(CHECKS, True)
            return {"condition": condition, "stereo": stereo, "facts": facts, "detected": dict.fromkeys(CHECKS, flag),
                    "quotes": 2, "quotes_verbatim": 1, "wer": 0.1 if stereo else 0.3}  # fmt: skip

        summary = summarise([row("clean", True, True), row("clean", False, False), row("noisy", True, True)])
        assert summary["checks"]["greeting_missing"]["clean"]["recall"] == 0.5
        assert summary["f1_by_layout"]["greeting_missing"] == {
            "clean stereo": 1.0,
            "clean mono": 0.0,
            "noisy stereo": 1.0,
        }
        assert summary["wer"] == {"stereo": {"clean": 0.1, "noisy": 0.1}, "mono": {"clean": 0.3}}
        assert summary["evidence"] == {
            "clean": {"quotes": 4, "verbatim": 2},
            "noisy": {"quotes": 2, "verbatim": 1},
        }


def test_noise_is_added_at_the_asked_snr() -> None:
    from scoring_audio import with_noise

    t = np.arange(16000) / 16000
    speech = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16).reshape(-1, 1)
    noisy = with_noise(speech, 10.0, seed="x")
    noise = noisy.astype(float) - speech.astype(float)
    snr = 10 * np.log10(np.mean(speech.astype(float) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.3)
    assert np.array_equal(noisy, with_noise(speech, 10.0, seed="x"))


def test_a_call_spec_holds_its_script() -> None:
    call = make_call(1, 0)
    assert isinstance(call, CallSpec) and call.script().startswith(call.turns[0][1])
