"""Audio and transcripts of the scoring corpus, cached under ``var/scoring_eval/``.

Clean calls are rendered by ``tests/speech.py`` (espeak-ng + sox, cached by content; the bench sets
the cache folder to ``var/scoring_eval/speech`` unless ``CALLCOV_SPEECH_CACHE`` names another). The noisy variant adds
white noise at a given SNR (dB) over the call's active speech, seeded by the call, to every channel.
Transcripts come from ``WhisperTranscriber`` with the whisper args of ``configs/serve.local.yaml``
(the CPU service), and are cached by audio hash + model + code version (a hash of the transcription
modules and the args), so re-scoring after a detection change reads them back in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "scoring_eval"
TRANSCRIPTION_SOURCES = ("whisper.py", "whisper_decoding.py", "whisper_batching.py", "diarization.py")
sys.path.insert(0, str(ROOT / "tests"))

from scoring_corpus import CallSpec  # noqa: E402
from speech import SILENCE_LEVEL, CallTruth, read_wav, synthesize_call, write_wav  # noqa: E402

from callcov.inference.transcript import Transcript  # noqa: E402


def render(spec: CallSpec, noise_db: float | None) -> CallTruth:
    """The call's WAV (clean, or with noise at ``noise_db`` SNR) and its turn times."""
    truth = synthesize_call(
        spec.turns,
        stereo=spec.stereo,
        overlaps=spec.overlaps,
        voices=spec.voices,
        words_per_minute=spec.words_per_minute,
    )
    if noise_db is None:
        return truth
    folder = VAR / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{truth.path.stem}-snr{noise_db:g}.wav"
    if not target.is_file():
        write_wav(target, with_noise(read_wav(truth.path), noise_db, seed=truth.path.stem))
    return CallTruth(path=target, stereo=truth.stereo, duration_s=truth.duration_s, turns=truth.turns)


def with_noise(samples: np.ndarray, snr_db: float, seed: str) -> np.ndarray:
    """int16 samples (frames x channels) plus white noise ``snr_db`` below the active speech power."""
    audio = samples.astype(np.float64)
    active = audio[np.abs(audio) > SILENCE_LEVEL]
    power = float(np.mean(active**2)) if active.size else 1.0
    rng = np.random.default_rng(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), size=audio.shape)
    return np.asarray(np.clip(np.round(audio + noise), -32768, 32767).astype(np.int16))


def service_whisper_args() -> dict[str, Any]:
    """The ``whisper`` application's args in the CPU service config, without Serve's own."""
    config = yaml.safe_load((ROOT / "configs" / "serve.local.yaml").read_text())
    app = next(a for a in config["applications"] if a["name"] == "whisper")
    serve_only = {"max_ongoing_requests", "num_replicas", "num_cpus", "num_gpus", "resources"}
    return {k: v for k, v in app["args"].items() if k not in serve_only}


def code_version(args: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode())
    for name in TRANSCRIPTION_SOURCES:
        digest.update((ROOT / "deployments" / name).read_bytes())
    return digest.hexdigest()[:12]


class TranscriptCache:
    """Transcripts by audio hash + model + code version; the model loads on the first miss."""

    def __init__(self) -> None:
        self.args = service_whisper_args()
        self.version = code_version(self.args)
        self.folder = VAR / "transcripts"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._transcriber: Any = None
        self.hits = self.misses = 0

    def key(self, audio: Path) -> str:
        audio_hash = hashlib.sha256(audio.read_bytes()).hexdigest()[:16]
        return f"{audio_hash}-{self.args['model']}-{self.version}"

    def load(self, key: str) -> Transcript:
        return Transcript.model_validate_json((self.folder / f"{key}.json").read_text())

    def transcribe(self, audio: Path) -> tuple[str, Transcript]:
        key = self.key(audio)
        path = self.folder / f"{key}.json"
        if path.is_file():
            self.hits += 1
            return key, self.load(key)
        self.misses += 1
        if self._transcriber is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from deployments.whisper import WhisperTranscriber

            self._transcriber = WhisperTranscriber(self.args)
        transcript = self._transcriber.transcribe_sync({"audio_path": str(audio)})
        path.write_text(transcript.model_dump_json())
        return key, transcript
