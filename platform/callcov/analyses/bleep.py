"""Audio redaction (issue 13, ``redact_audio``): a copy of the recording with a 1 kHz tone over every
redacted span of the transcript, as 16-bit PCM WAV at the recording's own sample rate and channels.

The recording is decoded like the transcriber decodes it (``callcov.inference.audio``): with the
demuxer of the format the submission probe detected (a file whose content says otherwise is refused)
and no further than the probed duration plus the decode margin. It is streamed: each decoded block is
bleeped and written before the next is read, so memory does not grow with the call's length.

Tone, not silence: a listener hears that something was removed, where a silence passes for a pause.
The tone is at -12 dBFS on every channel, from ``MARGIN_S`` before each span to ``MARGIN_S`` after it
(word times are approximate)."""

from __future__ import annotations

import math
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from callcov.inference.audio import HEAD_BYTES, FormatMismatch, pinned_demuxer

TONE_HZ = 1000.0
TONE_AMPLITUDE = 0.25 * 32767  # -12 dBFS
MARGIN_S = 0.1
WAV_MAX_BYTES = 0xFFFFFFFF - 36  # a RIFF chunk's size is 32 bits


class BleepFailed(ValueError):
    """The recording could not be decoded (again) for its bleeped copy."""


def bleep_intervals(
    spans: Iterable[tuple[float, float]], margin_s: float = MARGIN_S
) -> list[tuple[float, float]]:
    """The spans widened by ``margin_s`` each side, merged where they touch, in time order."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((max(0.0, s - margin_s), e + margin_s) for s, e in spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def write_bleeped(
    src: Path,
    dst: Path,
    intervals: list[tuple[float, float]],
    *,
    audio_format: str | None,
    max_duration_s: float | None,
) -> None:
    """Write ``src`` to ``dst`` as 16-bit WAV with the tone over ``intervals`` (seconds); ``BleepFailed``
    when it does not decode, or decodes longer than ``max_duration_s``."""
    import av  # deferred: PyAV loads FFmpeg's libraries

    with src.open("rb") as file:
        head = file.read(HEAD_BYTES)
    try:
        demuxer = pinned_demuxer(head, audio_format)
        with av.open(
            str(src),
            mode="r",
            format=demuxer,
            options={"protocol_whitelist": "file"},
            metadata_errors="ignore",
        ) as container:
            if not container.streams.audio:
                raise BleepFailed("the file has no audio stream")
            ctx = container.streams.audio[0].codec_context
            channels, rate = max(1, ctx.layout.nb_channels), int(ctx.sample_rate)
            with wave.open(str(dst), "wb") as out:
                out.setnchannels(channels)
                out.setsampwidth(2)
                out.setframerate(rate)
                limit = math.ceil(max_duration_s * rate) if max_duration_s is not None else None
                position = 0
                for block in _blocks(container, ctx.layout, channels, rate):
                    if limit is not None and position + len(block) > limit:
                        raise BleepFailed(f"the audio decodes longer than {max_duration_s} s")
                    if (position + len(block)) * channels * 2 > WAV_MAX_BYTES:
                        raise BleepFailed("the bleeped copy would exceed the 4 GiB of a WAV file")
                    _bleep(block, position, rate, intervals)
                    out.writeframes(block.tobytes())
                    position += len(block)
    except (FormatMismatch, av.FFmpegError) as exc:
        raise BleepFailed(f"the audio could not be decoded: {exc}") from exc


def _blocks(container: Any, layout: Any, channels: int, rate: int) -> Iterator[np.ndarray]:
    """The first audio stream as int16 blocks (samples x channels), at its own rate and channels."""
    import av

    resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
    frames = container.decode(audio=0)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            frame = None
        except av.error.InvalidDataError:
            continue
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1, channels).copy()
        if frame is None:
            return


def _bleep(block: np.ndarray, position: int, rate: int, intervals: list[tuple[float, float]]) -> None:
    """Put the tone over the samples of ``block`` (its first sample is ``position``) in ``intervals``."""
    end = position + len(block)
    for start_s, end_s in intervals:
        a, b = max(position, round(start_s * rate)), min(end, round(end_s * rate))
        if a >= b:
            continue
        n = np.arange(a, b)
        tone = (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * n / rate)).astype(np.int16)
        block[a - position : b - position, :] = tone[:, None]
