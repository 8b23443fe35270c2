"""The transcription deployment, tested directly (no Ray): the packaged faster-whisper base model on
calls synthesised by espeak-ng (``tests/speech.py``), plus the pieces that need no model."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import S3_BUCKET, s3_server
from speech import ACME_CALL, CallTruth, normalise, synthesize_call, write_wav

from callcov.inference.ports import TranscriptionRequest
from callcov.inference.transcript import Transcript
from callcov.storage.s3 import S3Storage
from deployments.diarization import DiarizationOptions, cue_score, median_pitch, name_speakers, two_voices
from deployments.whisper import AudioError, WhisperArgs, WhisperTranscriber, build_app
from deployments.whisper_decoding import SAMPLE_RATE, decode_channels, resolve_model

MODEL_DIR = Path(
    os.environ.get("CALLCOV_TEST_MODEL_DIR", Path(tempfile.gettempdir()) / "callcov-test-models")
)
ROLES = ["agent", "customer", "agent", "customer"]


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def transcriber(offline: None) -> WhisperTranscriber:
    return WhisperTranscriber(
        {
            "model": "base",
            "model_dir": str(MODEL_DIR),
            "device": "cpu",
            "compute_type": "int8",
            "cpu_threads": 2,
        }
    )


@pytest.fixture(scope="module")
def stereo_call() -> CallTruth:
    # 10 s of silence before the agent speaks, and ~19 s on the customer's channel: the VAD case.
    return synthesize_call(ACME_CALL, stereo=True, leading_silence_s=10.0)


@pytest.fixture(scope="module")
def mono_call() -> CallTruth:
    return synthesize_call(ACME_CALL, stereo=False)


@pytest.fixture(scope="module")
def stereo(transcriber: WhisperTranscriber, stereo_call: CallTruth) -> Transcript:
    return transcriber.transcribe_sync(TranscriptionRequest(audio_path=str(stereo_call.path)))


@pytest.fixture(scope="module")
def mono(transcriber: WhisperTranscriber, mono_call: CallTruth) -> Transcript:
    return transcriber.transcribe_sync({"audio_path": str(mono_call.path)})


def assert_times_match(transcript: Transcript, truth: CallTruth, tolerance: float = 1.0) -> None:
    assert len(transcript.segments) == len(truth.turns)
    for segment, turn in zip(transcript.segments, truth.turns, strict=True):
        assert abs(segment.start - turn.start) <= tolerance, (segment, turn)
        assert abs(segment.end - turn.end) <= tolerance, (segment, turn)


def assert_key_words(transcript: Transcript) -> None:
    agent = normalise(" ".join(s.text for s in transcript.segments if s.speaker == "agent"))
    customer = normalise(" ".join(s.text for s in transcript.segments if s.speaker == "customer"))
    for pattern in (r"thank you for calling", r"\b(acme|acne|acmi)\b", r"\bbank\b", r"\bjohn\b", r"recorded"):
        assert re.search(pattern, agent), (pattern, agent)
    assert re.search(r"date of birth", agent), agent
    for pattern in (r"credit card", r"charged twice", r"(fourth of july|4th of july|july 4)"):
        assert re.search(pattern, customer), (pattern, customer)
    assert re.search(r"(1985|nineteen eighty five)", customer), customer


class TestStereo:
    def test_roles_follow_the_channels(self, stereo: Transcript) -> None:
        assert stereo.diarization == "channels"
        assert [s.speaker for s in stereo.segments] == ROLES
        assert [s.channel for s in stereo.segments] == [0, 1, 0, 1]

    def test_key_words_are_heard(self, stereo: Transcript) -> None:
        assert_key_words(stereo)

    def test_times_are_true_despite_leading_silence(self, stereo: Transcript, stereo_call: CallTruth) -> None:
        assert stereo_call.turns[0].start == 10.0
        assert_times_match(stereo, stereo_call)

    def test_words_are_timed_inside_their_turn(self, stereo: Transcript) -> None:
        for segment in stereo.segments:
            assert segment.words
            assert segment.words[0].start == segment.start and segment.words[-1].end == segment.end
            starts = [w.start for w in segment.words]
            assert starts == sorted(starts)
            assert all(0 <= w.probability <= 1 and w.text == w.text.strip() for w in segment.words)
            assert 0.3 <= segment.confidence <= 1

    def test_text_has_role_prefixes(self, stereo: Transcript) -> None:
        lines = stereo.text.splitlines()
        assert [line.split(":")[0] for line in lines] == ["Agent", "Customer", "Agent", "Customer"]
        assert lines[0].startswith("Agent: Hello")

    def test_language_duration_and_model(self, stereo: Transcript, stereo_call: CallTruth) -> None:
        assert stereo.language == "en"
        assert stereo.duration_s == pytest.approx(stereo_call.duration_s, abs=0.05)
        assert stereo.model == "faster-whisper/base"


class TestMono:
    def test_two_speakers_with_roles(self, mono: Transcript) -> None:
        assert mono.diarization == "turns"
        assert [s.speaker for s in mono.segments] == ROLES
        assert all(s.channel is None for s in mono.segments)

    def test_turns_start_and_end_on_time(self, mono: Transcript, mono_call: CallTruth) -> None:
        assert_times_match(mono, mono_call)

    def test_key_words_and_prefixes(self, mono: Transcript) -> None:
        assert_key_words(mono)
        assert mono.text.startswith("Agent: Hello")
        assert "\nCustomer: " in mono.text


class TestServeApp:
    def test_builder_options_reach_the_deployment(self) -> None:
        app = build_app(
            {
                "device": "cuda",
                "num_gpus": 1,
                "resources": {"whisper": 1},
                "autoscaling_config": {"min_replicas": 0, "max_replicas": 4},
            }
        )
        deployment = app._bound_deployment  # no public accessor for a bound application's deployment
        assert deployment.name == "whisper"
        assert deployment.ray_actor_options == {"num_cpus": 1, "num_gpus": 1, "resources": {"whisper": 1}}
        assert deployment.max_ongoing_requests == 2

    @pytest.mark.asyncio
    async def test_local_serve_app_transcribes_through_a_handle(self, offline: None) -> None:
        from ray import serve

        call = synthesize_call(ACME_CALL[:2], stereo=False)
        app = build_app({"model": "base", "model_dir": str(MODEL_DIR), "cpu_threads": 2})
        handle = serve.run(app, name="whisper", route_prefix=None, _local_testing_mode=True)
        transcript = await handle.transcribe.remote(TranscriptionRequest(audio_path=str(call.path)))
        assert isinstance(transcript, Transcript)
        assert [s.speaker for s in transcript.segments] == ["agent", "customer"]


class EnergyWhisper:
    """A stand-in for ``WhisperModel``: one segment spanning the audible part of the channel."""

    def transcribe(self, audio: np.ndarray, **options: object) -> tuple[Iterator[object], SimpleNamespace]:
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        info = SimpleNamespace(
            language="en", language_probability=1.0, duration_after_vad=loud.size / SAMPLE_RATE
        )
        if not loud.size:
            return iter([]), info
        start, end = loud[0] / SAMPLE_RATE, loud[-1] / SAMPLE_RATE
        word = SimpleNamespace(word=" speech", start=start, end=end, probability=0.9)
        segment = SimpleNamespace(text=" speech", start=start, end=end, avg_logprob=-0.1, words=[word])
        return iter([segment]), info


class TestChannels:
    @pytest.mark.asyncio
    async def test_async_transcribe_honours_agent_channel(self) -> None:
        transcriber = WhisperTranscriber({"model": "double"}, model=EnergyWhisper())
        call = synthesize_call(ACME_CALL[:2], stereo=True)
        transcript = await transcriber.transcribe({"audio_path": str(call.path), "agent_channel": 1})
        assert [(s.speaker, s.channel) for s in transcript.segments] == [("customer", 0), ("agent", 1)]
        assert transcript.model == "faster-whisper/double"
        assert_times_match(transcript, call, tolerance=0.05)

    def test_agent_channel_defaults_to_the_args(self) -> None:
        transcriber = WhisperTranscriber({"agent_channel": 1, "warmup": False}, model=EnergyWhisper())
        call = synthesize_call(ACME_CALL[:2], stereo=True)
        transcript = transcriber.transcribe_sync({"audio_path": str(call.path)})
        assert [s.speaker for s in transcript.segments] == ["customer", "agent"]


class TestErrors:
    def test_missing_file(self, transcriber: WhisperTranscriber, tmp_path: Path) -> None:
        with pytest.raises(AudioError, match="not found"):
            transcriber.transcribe_sync({"audio_path": str(tmp_path / "nope.wav")})

    def test_not_audio(self, transcriber: WhisperTranscriber, tmp_path: Path) -> None:
        path = tmp_path / "notes.wav"
        path.write_text("this is not audio")
        with pytest.raises(AudioError):
            transcriber.transcribe_sync({"audio_path": str(path)})

    def test_remote_uri_is_refused(self, transcriber: WhisperTranscriber) -> None:
        with pytest.raises(AudioError, match="local files only"):
            transcriber.transcribe_sync({"audio_path": "s3://bucket/call.wav"})

    def test_unknown_model_is_never_downloaded(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="never downloaded"):
            resolve_model("large-v3", str(tmp_path))


class TestSettings:
    def test_reconfigure_changes_tunables_only(self, offline: None) -> None:
        fake = WhisperTranscriber({"warmup": False}, model=object())
        fake.reconfigure({"beam_size": 2, "vad_filter": False})
        assert (fake.tunables.beam_size, fake.tunables.vad_filter, fake.tunables.word_timestamps) == (
            2,
            False,
            True,
        )
        with pytest.raises(ValueError):
            fake.reconfigure({"device": "cuda"})
        fake.check_health()

    def test_scaling_is_one_mode(self) -> None:
        with pytest.raises(ValueError):
            WhisperArgs.model_validate({"num_replicas": 2, "autoscaling_config": {"max_replicas": 4}})
        with pytest.raises(ValueError):
            WhisperArgs.model_validate({"beam_sizee": 2})

    def test_dual_mono_stereo_counts_as_mono(self, tmp_path: Path) -> None:
        tone = (8000 * np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.int16)
        write_wav(tmp_path / "dual.wav", np.stack([tone, tone], axis=1))
        write_wav(tmp_path / "split.wav", np.stack([tone, np.zeros_like(tone)], axis=1))
        assert len(decode_channels(tmp_path / "dual.wav")) == 1
        assert len(decode_channels(tmp_path / "split.wav")) == 2


class TestDiarization:
    @pytest.mark.parametrize("f0", [110.0, 210.0])
    def test_pitch_of_a_voiced_tone(self, f0: float) -> None:
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
        assert median_pitch(voiced) == pytest.approx(12 * np.log2(f0 / 100), abs=0.5)

    def test_two_clear_voices_are_split(self) -> None:
        rng = np.random.default_rng(0)
        low = [np.concatenate([[1.0], rng.normal(0, 1, 12)]) + rng.normal(0, 0.3, 13) for _ in range(6)]
        high = [np.concatenate([[12.0], rng.normal(0, 1, 12)]) + rng.normal(0, 0.3, 13) for _ in range(6)]
        features = [f for pair in zip(low, high, strict=True) for f in pair] + [None]
        labels = two_voices(features, [1.0] * len(features), DiarizationOptions())
        assert labels == [0, 1] * 6 + [1]  # the piece without audio keeps the previous voice

    def test_one_voice_stays_one(self) -> None:
        rng = np.random.default_rng(1)
        features = [np.concatenate([[1.0 + rng.normal(0, 0.5)], rng.normal(0, 1, 12)]) for _ in range(12)]
        assert set(two_voices(features, [1.0] * 12, DiarizationOptions())) == {0}

    def test_roles_from_content_cues(self) -> None:
        texts = ["Thank you for calling Acme, how can I help you?", "I'm calling about my bill.", "Sure."]
        assert name_speakers(texts, [0, 1, 0], 1.5) == {0: "agent", 1: "customer"}
        assert name_speakers(texts, [1, 0, 1], 1.5) == {1: "agent", 0: "customer"}
        assert name_speakers(["Hi.", "Hello."], [0, 1], 1.5) == {0: "A", 1: "B"}
        assert cue_score("This call may be recorded for quality purposes.") > 0


class TestAudioFromStorage:
    @pytest.mark.asyncio
    async def test_a_replica_on_another_node_fetches_by_uri(self, tmp_path: Path) -> None:
        """The dispatcher's node saved the recording; the whisper replica's node has no copy at that
        path and fetches it by its storage URI (an S3-compatible server on loopback)."""
        call = synthesize_call(ACME_CALL[:2], stereo=True)
        with s3_server() as endpoint:
            dispatcher_node = S3Storage(S3_BUCKET, tmp_path / "node-a", endpoint_url=endpoint)
            saved = await dispatcher_node.save(
                "acct/call", chunks_of(call.path.read_bytes()), max_bytes=10**8
            )
            transcriber = WhisperTranscriber(
                {"model": "double", "warmup": False},
                model=EnergyWhisper(),
                storage=S3Storage(S3_BUCKET, tmp_path / "node-b", endpoint_url=endpoint),
            )
            missing_here = str(tmp_path / "node-a-only" / "call.wav")
            transcript = await transcriber.transcribe({"audio_path": missing_here, "audio_uri": saved.uri})
            assert [s.speaker for s in transcript.segments] == ["agent", "customer"]
            with pytest.raises(AudioError, match="not found in storage"):
                await transcriber.transcribe({"audio_path": missing_here, "audio_uri": saved.uri + "-gone"})


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data
