"""The bleeper (``callcov.analyses.bleep``) on its own: compressed recordings keep their sample rate and
channels, the tone is where the intervals say, and a file that is not what the probe said, or decodes
longer than its bound, is refused."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from test_submission import tone_wav

from callcov.analyses.bleep import TONE_HZ, BleepFailed, bleep_intervals, write_bleeped


def read(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        return data.reshape(-1, wav.getnchannels()), wav.getframerate()


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_intervals_are_widened_and_merged() -> None:
    assert bleep_intervals([(2.0, 3.0), (3.15, 4.0), (0.05, 0.5), (9.0, 9.5)]) == [
        (0.0, 0.6),
        (1.9, 4.1),
        (8.9, 9.6),
    ]


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox converts the test recording")
@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_compressed_recordings(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "call.wav"
    source.write_bytes(tone_wav(3.0, 22050, 2))  # a 440 Hz tone as the "speech"
    converted = tmp_path / f"call.{fmt}"
    subprocess.run(["sox", str(source), str(converted)], check=True, capture_output=True)
    out = tmp_path / "out.wav"
    write_bleeped(converted, out, [(1.0, 2.0)], audio_format=fmt, max_duration_s=10.0)
    samples, rate = read(out)
    assert rate == 22050 and samples.shape[1] == 2 and abs(len(samples) / rate - 3.0) < 0.05
    for channel in range(2):
        assert abs(peak_hz(samples[int(1.05 * rate) : int(1.95 * rate), channel], rate) - TONE_HZ) < 5
        assert abs(peak_hz(samples[: int(0.9 * rate), channel], rate) - 440) < 5
        assert abs(peak_hz(samples[int(2.1 * rate) :, channel], rate) - 440) < 5


def test_no_intervals_is_the_recording_itself(tmp_path: Path) -> None:
    source = tmp_path / "call.wav"
    source.write_bytes(tone_wav(1.0, 8000, 1))
    write_bleeped(source, tmp_path / "out.wav", [], audio_format="wav", max_duration_s=5.0)
    assert np.array_equal(read(tmp_path / "out.wav")[0], read(source)[0])


def test_refusals(tmp_path: Path) -> None:
    source = tmp_path / "call.wav"
    source.write_bytes(tone_wav(2.0, 8000, 1))
    with pytest.raises(BleepFailed, match="probed as mp3"):
        write_bleeped(source, tmp_path / "out.wav", [], audio_format="mp3", max_duration_s=5.0)
    with pytest.raises(BleepFailed, match="longer than"):
        write_bleeped(source, tmp_path / "out.wav", [], audio_format="wav", max_duration_s=1.0)
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 4)
    with pytest.raises(BleepFailed):
        write_bleeped(tmp_path / "junk.wav", tmp_path / "out.wav", [], audio_format="wav", max_duration_s=5.0)
