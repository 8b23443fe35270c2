"""The transcriber's audio decoding, without a model (a double records what it is given): the demuxer
is the one the submission probe pinned, a file that is not of that format is refused, and decoding
stops past the bound (the probed duration plus a margin) instead of holding hours in memory.
Also the Serve handle's error mapping: a replica that died mid-request is a crash, not a busy model."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from speech import write_wav

from callcov.inference.audio import decode_limit_s
from callcov.inference.ports import InferenceCrashed, InferenceError, TranscriptionRequest
from deployments.whisper import AudioError, WhisperTranscriber
from deployments.whisper_decoding import SAMPLE_RATE, decode_channels

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


class RecordingModel:
    """Stands in for ``WhisperModel``: records the length of each channel it is asked to transcribe."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[list[Any], Any]:
        self.seconds.append(len(audio) / SAMPLE_RATE)
        info = SimpleNamespace(language="en", language_probability=1.0, duration_after_vad=0.0)
        return [], info


@pytest.fixture
def model() -> RecordingModel:
    return RecordingModel()


@pytest.fixture
def transcriber(model: RecordingModel) -> WhisperTranscriber:
    return WhisperTranscriber({"warmup": False}, model=model)


def tone(seconds: float, rate: int = SAMPLE_RATE, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.fixture(scope="module")
def polyglot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One second of MPEG program stream (what the submission probe, pinned to the ``mpeg`` demuxer,
    sees: 1 s) followed by a minute of MPEG transport stream whose audio the program-stream demuxer
    takes for another stream. FFmpeg left to guess picks ``mpegts`` (the program stream has no system
    header, so it scores low) and decodes the minute."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    root = tmp_path_factory.mktemp("polyglot")
    short, long = root / "short.mpg", root / "long.ts"
    _ffmpeg(
        *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1"),
        *("-c:a", "mp2", "-b:a", "32k", "-packetsize", "600", "-f", "mpeg", str(short)),
    )
    _ffmpeg(
        *("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=60"),
        *("-c:a", "mp2", "-b:a", "32k", "-f", "mpegts", str(long)),
    )
    data = short.read_bytes()
    starts = [m.start() for m in re.finditer(rb"\x00\x00\x01[\xb9-\xff]", data)] + [len(data)]
    kept = b"".join(  # the pack headers and audio packets; no system header, no padding
        data[a:b] for a, b in zip(starts, starts[1:], strict=False) if data[a + 3] in (0xBA, 0xC0)
    )
    transport = long.read_bytes().replace(b"\x00\x00\x01\xc0", b"\x00\x00\x01\xc1")
    path = root / "polyglot.mpeg"
    path.write_bytes(kept + transport)
    return path


@needs_ffmpeg
def test_the_polyglot_probes_short_and_guesses_long(polyglot: Path) -> None:
    """The premise of the next test: the probe and an unpinned FFmpeg disagree on this file."""
    import av

    from callcov.analyses.audio import probe_audio

    assert probe_audio(polyglot).duration_s == pytest.approx(1.0, abs=0.1)
    with av.open(str(polyglot)) as container:
        assert container.format.name == "mpegts"


@needs_ffmpeg
def test_the_decoder_uses_the_probed_format(
    transcriber: WhisperTranscriber, model: RecordingModel, polyglot: Path
) -> None:
    request = TranscriptionRequest(
        audio_path=str(polyglot), audio_format="mpeg", max_duration_s=decode_limit_s(1.0)
    )
    transcriber.transcribe_sync(request)
    assert model.seconds and max(model.seconds) == pytest.approx(1.0, abs=0.1)


def test_a_file_not_of_the_probed_format_is_refused(
    transcriber: WhisperTranscriber, model: RecordingModel, tmp_path: Path
) -> None:
    write_wav(tmp_path / "call.wav", tone(2.0)[:, None])
    request = TranscriptionRequest(audio_path=str(tmp_path / "call.wav"), audio_format="flac")
    with pytest.raises(AudioError, match="flac"):
        transcriber.transcribe_sync(request)
    assert model.seconds == []


@needs_ffmpeg
def test_decoding_stops_past_the_bound(
    transcriber: WhisperTranscriber, model: RecordingModel, tmp_path: Path
) -> None:
    """Ten minutes of silence in a small FLAC, submitted (say) as 3 s: decoding stops a little past
    the bound, with memory for the bound, not for ten minutes (38 MB as float32 at 16 kHz)."""
    path = tmp_path / "silence.flac"
    _ffmpeg(*("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "600", "-c:a", "flac", str(path)))
    request = TranscriptionRequest(audio_path=str(path), audio_format="flac", max_duration_s=8.0)
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match="longer than"):
            transcriber.transcribe_sync(request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024
    assert model.seconds == []


def test_a_file_within_its_bound_decodes_whole(tmp_path: Path) -> None:
    write_wav(tmp_path / "call.wav", tone(3.0)[:, None])
    assert len(decode_channels(tmp_path / "call.wav", audio_format="wav", max_duration_s=5.0)[0]) == 3 * 16000
    with pytest.raises(AudioError, match="longer than"):
        decode_channels(tmp_path / "call.wav", audio_format="wav", max_duration_s=2.0)


@needs_ffmpeg
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("mono8k.wav", ("-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le")),
        ("stereo44k.mp3", ("-ac", "2", "-ar", "44100", "-c:a", "libmp3lame")),
        ("stereo48k.ogg", ("-ac", "2", "-ar", "48000", "-c:a", "libvorbis")),
    ],
)
def test_samples_are_those_faster_whisper_decodes(tmp_path: Path, name: str, args: tuple[str, ...]) -> None:
    """The bounded decoder gives the samples ``faster_whisper.decode_audio`` gave (the transcripts
    the tests and benches recorded stay valid)."""
    from faster_whisper import decode_audio

    path = tmp_path / name
    left = "sine=frequency=220:sample_rate=44100:duration=7"
    right = "sine=frequency=330:sample_rate=44100:duration=7"
    _ffmpeg(
        *("-f", "lavfi", "-i", left, "-f", "lavfi", "-i", right),
        *("-filter_complex", "[0:a][1:a]amerge=inputs=2[a]", "-map", "[a]", *args, str(path)),
    )
    fmt = {"wav": "wav", "mp3": "mp3", "ogg": "ogg"}[path.suffix[1:]]
    ours = decode_channels(path, audio_format=fmt, max_duration_s=60.0)
    if args[1] == "1":
        assert len(ours) == 1
        np.testing.assert_array_equal(ours[0], decode_audio(str(path), sampling_rate=SAMPLE_RATE))
    else:
        expected = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=True)
        assert len(ours) == 2
        for got, want in zip(ours, expected, strict=True):
            np.testing.assert_array_equal(got, want)


class TestServeHandleErrors:
    """``ServeTranscriber`` over a stand-in handle (no Ray cluster)."""

    @staticmethod
    def transcribe_raising(exc: Exception) -> Any:
        from deployments.inference import ServeTranscriber

        async def fail() -> None:
            raise exc

        transcriber = ServeTranscriber("whisper")
        remote = SimpleNamespace(remote=lambda request: fail())
        transcriber._handle = SimpleNamespace(transcribe=remote)
        return transcriber.transcribe(TranscriptionRequest(audio_path="/nowhere.wav"))

    def test_a_replica_that_died_mid_request_is_a_crash(self) -> None:
        from ray.exceptions import ActorDiedError

        with pytest.raises(InferenceCrashed):
            asyncio.run(self.transcribe_raising(ActorDiedError()))

    def test_a_busy_deployment_is_transient_not_a_crash(self) -> None:
        from ray.serve.exceptions import BackPressureError

        with pytest.raises(InferenceError) as raised:
            asyncio.run(
                self.transcribe_raising(BackPressureError(num_queued_requests=3, max_queued_requests=2))
            )
        assert not isinstance(raised.value, InferenceCrashed)
