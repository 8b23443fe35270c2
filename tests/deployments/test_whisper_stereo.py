"""Stereo calls are heard as well as mono ones (issue 13): the VAD's speech regions of one channel are
decoded where they lie, with the silence between them (``whisper_decoding.speech_clips``), not joined
end to end, which ran one speaker's consecutive turns together (a card number and the expiry date the
customer gave next were heard as one number). The packaged base model on an espeak-ng call."""

from __future__ import annotations

import re

import pytest
from speech import normalise, synthesize_call
from test_whisper import offline, transcriber  # noqa: F401  (module fixtures: HF_HUB_OFFLINE, the model)

from callcov.inference.transcript import Transcript
from deployments.whisper import WhisperTranscriber
from deployments.whisper_decoding import merge_regions

CARD_CALL = (
    ("agent", "Of course. Please read me the card number."),
    ("customer", "It is four one one one, one one one one, one one one one, one one one one."),
    ("agent", "Thank you. And the expiry date and the security code?"),
    ("customer", "Twelve twenty seven, and the code is three four five."),
)


def digits(text: str) -> str:
    return "".join(re.findall(r"\d", normalise(text)))


@pytest.fixture(scope="module")
def card_call_stereo(transcriber: WhisperTranscriber) -> tuple[Transcript, list[float]]:  # noqa: F811
    call = synthesize_call(CARD_CALL, stereo=True)
    starts = [turn.start for turn in call.turns]
    return transcriber.transcribe_sync({"audio_path": str(call.path)}), starts


class TestStereoTurnsStayApart:
    def test_each_customer_turn_is_heard_in_its_own_segment(
        self, card_call_stereo: tuple[Transcript, list[float]]
    ) -> None:
        transcript, starts = card_call_stereo
        customer = [s for s in transcript.segments if s.speaker == "customer"]
        assert len(customer) == 2, customer
        card, expiry = customer
        assert abs(expiry.start - starts[3]) < 1.0, (expiry, starts)
        assert digits(card.text).startswith("4111") and "1227" not in digits(card.text), card.text
        assert digits(expiry.text).startswith("1227"), expiry.text


class TestMergeRegions:
    def test_close_regions_join_with_their_silence(self) -> None:
        assert merge_regions([(0.0, 2.0), (5.0, 7.0), (20.0, 21.0)], max_gap_s=10, max_clip_s=30) == [
            (0.0, 7.0),
            (20.0, 21.0),
        ]

    def test_a_clip_never_grows_past_its_bound(self) -> None:
        regions = [(0.0, 10.0), (12.0, 22.0), (24.0, 34.0)]
        assert merge_regions(regions, max_gap_s=10, max_clip_s=30) == [(0.0, 22.0), (24.0, 34.0)]
