"""The transcription deployment on CUDA with float16 (``pytest -m gpu tests/gpu``): the packaged base
model on the same synthetic calls as the CPU tests, sequential and batched. Skipped without a GPU."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from speech import ACME_CALL, CallTruth, normalise, synthesize_call

from callcov.inference.transcript import Transcript
from deployments.whisper import WhisperTranscriber

pytestmark = pytest.mark.gpu

MODEL_DIR = Path(
    os.environ.get("CALLCOV_TEST_MODEL_DIR", Path(tempfile.gettempdir()) / "callcov-test-models")
)
ROLES = ["agent", "customer", "agent", "customer"]


def cuda_devices() -> int:
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    if cuda_devices() == 0:
        pytest.skip("no CUDA device visible to CTranslate2")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module", params=[0, 8], ids=["sequential", "batched"])
def transcriber(request: pytest.FixtureRequest, offline: None) -> WhisperTranscriber:
    return WhisperTranscriber(
        {
            "model": os.environ.get("CALLCOV_TEST_GPU_MODEL", "base"),
            "model_dir": str(MODEL_DIR),
            "device": "cuda",
            "compute_type": "float16",
            "batch_size": request.param,
        }
    )


@pytest.fixture(scope="module")
def stereo_call() -> CallTruth:
    return synthesize_call(ACME_CALL, stereo=True, leading_silence_s=10.0)


@pytest.fixture(scope="module")
def mono_call() -> CallTruth:
    return synthesize_call(ACME_CALL, stereo=False)


def check_times(transcript: Transcript, truth: CallTruth) -> None:
    assert len(transcript.segments) == len(truth.turns)
    for segment, turn in zip(transcript.segments, truth.turns, strict=True):
        assert abs(segment.start - turn.start) <= 1.0, (segment, turn)


def test_stereo_on_cuda(transcriber: WhisperTranscriber, stereo_call: CallTruth) -> None:
    transcript = transcriber.transcribe_sync({"audio_path": str(stereo_call.path)})
    assert transcript.diarization == "channels"
    assert [s.speaker for s in transcript.segments] == ROLES
    assert [s.channel for s in transcript.segments] == [0, 1, 0, 1]
    check_times(transcript, stereo_call)
    assert "thank you for calling" in normalise(transcript.segments[0].text)
    assert all(s.words for s in transcript.segments)


def test_mono_on_cuda(transcriber: WhisperTranscriber, mono_call: CallTruth) -> None:
    transcript = transcriber.transcribe_sync({"audio_path": str(mono_call.path)})
    assert transcript.diarization == "turns"
    assert [s.speaker for s in transcript.segments] == ROLES
    check_times(transcript, mono_call)
    assert transcript.text.startswith("Agent: Hello")
