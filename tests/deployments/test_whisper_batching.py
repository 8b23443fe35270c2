"""Cross-call batching in the transcription deployment (``deployments/whisper_batching.py``), tested
directly (no Ray): the packaged faster-whisper base model on CPU, calls synthesised by espeak-ng.

The reference for "the same transcript" is today's per-call path: faster-whisper's own
``BatchedInferencePipeline`` run on each channel of one call at a time."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from speech import ACME_CALL, CallTruth, synthesize_call
from test_whisper import offline  # noqa: F401  (the module-scoped HF_HUB_OFFLINE fixture, autouse)

from callcov.inference.transcript import Transcript
from deployments.whisper import WhisperTranscriber
from deployments.whisper_batching import ChunkBatcher
from deployments.whisper_decoding import load_model, resolve_model

MODEL_DIR = Path(
    os.environ.get("CALLCOV_TEST_MODEL_DIR", Path(tempfile.gettempdir()) / "callcov-test-models")
)
SHORT_CALL = (
    ("agent", "Good morning, this is Sara from Acme Bank. How can I help?"),
    ("customer", "I would like to close my savings account, please."),
    ("agent", "Of course. May I have your full name?"),
)
# Word and turn times may differ this much between batch compositions (int8 GEMMs on other shapes).
TIME_TOLERANCE_S = 0.05


@pytest.fixture(scope="module")
def model() -> Any:  # after the autouse `offline` fixture
    path, _ = resolve_model("base", str(MODEL_DIR))
    return load_model(path, "cpu", "int8", cpu_threads=2, num_workers=1)


def make(model: Any, **args: Any) -> WhisperTranscriber:
    return WhisperTranscriber({"model": "base", "warmup": False, **args}, model=model)


class PerCallBatched(WhisperTranscriber):
    """The reference: faster-whisper's stock ``BatchedInferencePipeline`` on each channel of one call
    (a fresh one per channel, so no state is shared), as the transcriber ran before cross-call batching."""

    def _channel_engine(self, call: int, channel: int) -> Any:
        from faster_whisper import BatchedInferencePipeline

        return BatchedInferencePipeline(self._model)


@pytest.fixture(scope="module")
def calls() -> list[CallTruth]:
    return [
        synthesize_call(ACME_CALL, stereo=True),
        synthesize_call(ACME_CALL, stereo=True, leading_silence_s=10.0),
        synthesize_call(ACME_CALL, stereo=False, gap_s=0.9),
        synthesize_call(SHORT_CALL, stereo=True, leading_silence_s=2.0),
    ]


@pytest.fixture(scope="module")
def reference(model: Any, calls: list[CallTruth]) -> list[Transcript]:
    per_call = PerCallBatched({"model": "base", "warmup": False, "batch_size": 8}, model=model)
    return [per_call.transcribe_sync({"audio_path": str(call.path)}) for call in calls]


@pytest.fixture(scope="module")
def batched(model: Any) -> Iterator[WhisperTranscriber]:
    transcriber = make(model, batch_size=8, batch_wait_timeout_s=0.2)
    yield transcriber
    transcriber.close()


@pytest.fixture(scope="module")
def concurrent(batched: WhisperTranscriber, calls: list[CallTruth]) -> list[Transcript]:
    async def all_at_once() -> list[Transcript]:
        return await asyncio.gather(*(batched.transcribe({"audio_path": str(c.path)}) for c in calls))

    return asyncio.run(all_at_once())


def assert_same_transcript(got: Transcript, want: Transcript) -> None:
    assert (got.language, got.diarization, got.duration_s) == (
        want.language,
        want.diarization,
        want.duration_s,
    )
    assert [(s.speaker, s.channel, s.text) for s in got.segments] == [
        (s.speaker, s.channel, s.text) for s in want.segments
    ]
    for segment, expected in zip(got.segments, want.segments, strict=True):
        assert segment.start == pytest.approx(expected.start, abs=TIME_TOLERANCE_S)
        assert segment.end == pytest.approx(expected.end, abs=TIME_TOLERANCE_S)
        assert [w.text for w in segment.words] == [w.text for w in expected.words]
        for word, want_word in zip(segment.words, expected.words, strict=True):
            assert word.start == pytest.approx(want_word.start, abs=TIME_TOLERANCE_S), (word, want_word)
            assert word.end == pytest.approx(want_word.end, abs=TIME_TOLERANCE_S), (word, want_word)


class TestCrossCallBatching:
    def test_concurrent_calls_match_the_per_call_path(
        self, concurrent: list[Transcript], reference: list[Transcript]
    ) -> None:
        for got, want in zip(concurrent, reference, strict=True):
            assert got.segments, want
            assert_same_transcript(got, want)

    def test_one_batch_holds_chunks_of_several_calls(
        self, batched: WhisperTranscriber, concurrent: list[Transcript]
    ) -> None:
        stats = batched.batch_stats()
        assert stats["batch_size"] == 8
        assert stats["batches"] >= 1 and stats["chunks"] >= 7  # 3 stereo calls (2 channels) and a mono one
        assert all(1 <= b["chunks"] <= 8 for b in stats["recent"])
        assert sum(b["chunks"] for b in stats["recent"]) == stats["chunks"]
        assert max(b["calls"] for b in stats["recent"]) > 1, stats["recent"]

    def test_calls_one_at_a_time_match_too(
        self, model: Any, calls: list[CallTruth], reference: list[Transcript]
    ) -> None:
        transcriber = make(model, batch_size=8, batch_wait_timeout_s=0.0)
        try:
            got = transcriber.transcribe_sync({"audio_path": str(calls[1].path)})
        finally:
            transcriber.close()
        assert_same_transcript(got, reference[1])
        assert max(b["calls"] for b in transcriber.batch_stats()["recent"]) == 1


class TestStereoChannelsRunTogether:
    @pytest.mark.parametrize("batch_size", [0, 8])
    def test_the_two_channels_overlap_in_time(
        self, model: Any, calls: list[CallTruth], batch_size: int
    ) -> None:
        transcriber = make(model, batch_size=batch_size)
        try:
            transcript = transcriber.transcribe_sync({"audio_path": str(calls[0].path)})
        finally:
            transcriber.close()
        assert [s.channel for s in transcript.segments] == [0, 1, 0, 1]
        spans = transcriber.batch_stats()["channels"]
        assert sorted(s["channel"] for s in spans) == [0, 1]
        assert len({s["call"] for s in spans}) == 1
        first, second = sorted(spans, key=lambda s: s["start"])
        assert second["start"] < first["end"], spans  # the second began before the first ended


class TestChunkBatcher:
    """The batcher on its own, with a stand-in for the model's batched decode."""

    def test_batches_group_by_key_and_keep_order(self) -> None:
        seen: list[list[tuple[str, int]]] = []
        gate = threading.Event()

        def decode(key: str, items: list[Any]) -> list[Any]:
            gate.wait(5)
            seen.append([(key, item.index) for item in items])
            return [(key, item.index) for item in items]

        batcher = ChunkBatcher(decode, max_batch_size=3, wait_s=0.05)
        try:
            first = batcher.submit("en", call=1, channel=0, chunks=[0])  # taken alone, held by the gate
            time.sleep(0.2)
            later = [
                batcher.submit("de", call=2, channel=0, chunks=[0, 1]),
                batcher.submit("en", call=3, channel=0, chunks=[0, 1, 2, 3]),
                batcher.submit("de", call=4, channel=1, chunks=[0]),
            ]
            gate.set()
            results = [[f.result(5) for f in futures] for futures in [first, *later]]
        finally:
            batcher.close()
        assert results[2] == [("en", 0), ("en", 1), ("en", 2), ("en", 3)]
        assert seen == [
            [("en", 0)],
            [("de", 0), ("de", 1), ("de", 0)],
            [("en", 0), ("en", 1), ("en", 2)],
            [("en", 3)],
        ]
        stats = batcher.stats()
        assert (stats["batches"], stats["chunks"]) == (4, 8)
        assert [b["calls"] for b in stats["recent"]] == [1, 2, 1, 1]

    def test_a_failed_batch_fails_its_chunks_only(self) -> None:
        def decode(key: str, items: list[Any]) -> list[Any]:
            if key == "bad":
                raise RuntimeError("CUDA out of memory")
            return [item.index for item in items]

        batcher = ChunkBatcher(decode, max_batch_size=4, wait_s=0.0)
        try:
            bad = batcher.submit("bad", call=1, channel=0, chunks=[0, 1])
            good = batcher.submit("good", call=2, channel=0, chunks=[0, 1])
            with pytest.raises(RuntimeError, match="out of memory"):
                bad[1].result(5)
            assert [f.result(5) for f in good] == [0, 1]
        finally:
            batcher.close()

    def test_closing_fails_what_is_still_queued(self) -> None:
        batcher = ChunkBatcher(lambda key, items: [None] * len(items), max_batch_size=2, wait_s=60)
        pending = batcher.submit("en", call=1, channel=0, chunks=[0])
        batcher.close()
        with pytest.raises(RuntimeError, match="closed"):
            pending[0].result(5)

    def test_the_replica_settings_reach_the_batcher(self) -> None:
        transcriber = WhisperTranscriber({"batch_size": 4, "warmup": False}, model=object())
        stats = transcriber.batch_stats()
        assert (stats["batch_size"], stats["batches"], stats["recent"], stats["channels"]) == (4, 0, [], [])
        transcriber.reconfigure({"batch_wait_timeout_s": 0.5})
        assert transcriber._batcher is not None and transcriber._batcher.wait_s == 0.5
        transcriber.check_health()
        transcriber.close()
        with pytest.raises(RuntimeError, match="stopped"):
            transcriber.check_health()
