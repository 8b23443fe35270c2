"""Synthetic two-voice calls for the transcription tests, spoken by espeak-ng at 16 kHz.

``synthesize_call`` renders each turn with its role's voice (agent: a male en-us variant, customer: a
female one), lays the turns out on a timeline and writes a 16-bit WAV: stereo puts the agent on
channel 0 and the customer on channel 1 (silence on the other channel), mono sums them. It returns the
ground truth: each turn's role, text and the start and end of its audible speech. Rendered calls are
cached by content hash under the system temp folder, so repeated tests only copy a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
VOICES: Mapping[str, str] = {"agent": "en-us+m3", "customer": "en-us+f4"}
WORDS_PER_MINUTE = 160
# Samples whose magnitude stays below this (int16 scale) at the ends of a rendered turn are trimmed.
SILENCE_LEVEL = 200
_VERSION = 1  # bump when the rendering changes, to invalidate the cache

# A short inbound call: the agent greets, names the bank and themself, and reads the recording notice.
ACME_CALL: tuple[tuple[str, str], ...] = (
    (
        "agent",
        "Hello, thank you for calling Acme Bank, my name is John. "
        "This call may be recorded for quality purposes.",
    ),
    ("customer", "Hi John, I am calling because my credit card was charged twice."),
    ("agent", "I am sorry to hear that. Can you please confirm your date of birth?"),
    ("customer", "Sure, it is the fourth of July, nineteen eighty five."),
)


@dataclass(frozen=True)
class TurnTruth:
    role: str
    text: str
    start: float
    end: float
    channel: int | None


@dataclass(frozen=True)
class CallTruth:
    path: Path
    stereo: bool
    duration_s: float
    turns: tuple[TurnTruth, ...]

    def of(self, role: str) -> list[TurnTruth]:
        return [turn for turn in self.turns if turn.role == role]


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: for comparing what Whisper heard."""
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower())
    return " ".join(kept.split())


def cache_dir() -> Path:
    folder = Path(os.environ.get("CALLCOV_SPEECH_CACHE", Path(tempfile.gettempdir()) / "callcov-speech"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def synthesize_call(
    turns: Sequence[tuple[str, str]],
    path: str | Path | None = None,
    *,
    stereo: bool,
    gap_s: float = 0.6,
    leading_silence_s: float = 0.0,
    overlaps: Mapping[int, float] | None = None,
    voices: Mapping[str, str] = VOICES,
    words_per_minute: int = WORDS_PER_MINUTE,
) -> CallTruth:
    """Render ``turns`` ((role, text) pairs, role ``agent`` or ``customer``) into a WAV file.

    ``gap_s`` is the silence between turns, ``leading_silence_s`` the silence before the first one, and
    ``overlaps`` maps a turn's index to how many seconds it starts before the previous turn ends (it
    replaces the gap), ``words_per_minute`` espeak-ng's speed. ``path`` gets a copy of the cached file; without it the cached file is returned.
    """
    for role, _ in turns:
        if role not in voices:
            raise ValueError(f"unknown role {role!r}")
    spec = {
        "version": _VERSION,
        "turns": [list(turn) for turn in turns],
        "stereo": stereo,
        "gap_s": gap_s,
        "leading_silence_s": leading_silence_s,
        "overlaps": {str(k): v for k, v in sorted((overlaps or {}).items())},
        "voices": dict(voices),
        "espeak": _espeak_version(),
    }
    if words_per_minute != WORDS_PER_MINUTE:  # keeps the cache keys of calls at the default speed
        spec["words_per_minute"] = words_per_minute
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]
    cached_wav, cached_truth = cache_dir() / f"{key}.wav", cache_dir() / f"{key}.json"
    if not (cached_wav.is_file() and cached_truth.is_file()):
        truth = _render(
            turns, cached_wav, stereo, gap_s, leading_silence_s, overlaps or {}, voices, words_per_minute
        )
        _write_atomic(cached_truth, json.dumps([asdict(t) for t in truth[1]]).encode())
    duration, truth_turns = _read_truth(cached_wav, cached_truth)
    target = cached_wav
    if path is not None:
        target = Path(path)
        shutil.copyfile(cached_wav, target)
    return CallTruth(path=target, stereo=stereo, duration_s=duration, turns=truth_turns)


def speak(text: str, voice: str, words_per_minute: int = WORDS_PER_MINUTE) -> np.ndarray:
    """One utterance as int16 samples at 16 kHz, with the silence at both ends trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, resampled = Path(tmp) / "raw.wav", Path(tmp) / "16k.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)],
            check=True,
            capture_output=True,
        )
        samples = read_wav(resampled)[:, 0]
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_LEVEL)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples[:0]


def read_wav(path: str | Path) -> np.ndarray:
    """Samples as an int16 array of shape (frames, channels)."""
    with wave.open(str(path), "rb") as wav:
        channels = wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data.reshape(-1, channels)


def write_wav(path: str | Path, samples: np.ndarray) -> None:
    """Write int16 samples of shape (frames, channels) at 16 kHz."""
    frames = np.ascontiguousarray(samples.astype("<i2"))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(frames.tobytes())


def _render(
    turns: Sequence[tuple[str, str]],
    target: Path,
    stereo: bool,
    gap_s: float,
    leading_silence_s: float,
    overlaps: Mapping[int, float],
    voices: Mapping[str, str],
    words_per_minute: int = WORDS_PER_MINUTE,
) -> tuple[np.ndarray, list[TurnTruth]]:
    clips = [speak(text, voices[role], words_per_minute) for role, text in turns]
    starts: list[int] = []
    cursor = round(leading_silence_s * SAMPLE_RATE)
    for index, clip in enumerate(clips):
        if index:
            step = -overlaps[index] if index in overlaps else gap_s
            cursor = max(0, cursor + round(step * SAMPLE_RATE))
        starts.append(cursor)
        cursor += len(clip)
    total = max(start + len(clip) for start, clip in zip(starts, clips, strict=True)) + SAMPLE_RATE // 2
    mix = np.zeros((total, 2 if stereo else 1), dtype=np.int32)
    truth = []
    for (role, text), clip, start in zip(turns, clips, starts, strict=True):
        channel = (0 if role == "agent" else 1) if stereo else 0
        mix[start : start + len(clip), channel] += clip
        end = start + len(clip)
        truth.append(
            TurnTruth(role, text, start / SAMPLE_RATE, end / SAMPLE_RATE, channel if stereo else None)
        )
    audio = np.clip(mix, -32768, 32767).astype(np.int16)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".wav", delete=False) as tmp:
        write_wav(tmp.name, audio)
    os.replace(tmp.name, target)
    return audio, truth


def _read_truth(wav_path: Path, truth_path: Path) -> tuple[float, tuple[TurnTruth, ...]]:
    with wave.open(str(wav_path), "rb") as wav:
        duration = wav.getnframes() / wav.getframerate()
    turns = tuple(TurnTruth(**item) for item in json.loads(truth_path.read_text()))
    return duration, turns


def _write_atomic(target: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)


def _espeak_version() -> str:
    result = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True)
    return result.stdout.strip()
