"""Probing a submitted recording with PyAV: its format (detected from the content, never the file
name; the table is in ``callcov.inference.audio``, which the transcriber's decoder shares), its
duration, channels and sample rate, opened with the format's pinned demuxer."""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from callcov.analyses.errors import AudioTooLong, EmptyAudio, InvalidFileFormat
from callcov.inference.audio import AUDIO_FORMATS, DEMUXERS, HEAD_BYTES, UNKNOWN, detect_format, id3_end

__all__ = ["AUDIO_FORMATS", "AudioInfo", "detect_format", "probe_audio", "probe_audio_async"]

logger = logging.getLogger("callcov.analyses.audio")

_MAX_DECODE_PACKETS = 64


class AudioInfo(BaseModel):
    """What probing found: the detected format and the first audio stream's properties."""

    format: str
    duration_s: float
    channels: int
    sample_rate: int
    size_bytes: int


# Shorter than this is no call: a truncated file, or a header with a few stray bytes.
MIN_DURATION_S = 0.1


def probe_audio(path: Path, *, max_duration_s: float | None = None) -> AudioInfo:
    """Check that ``path`` holds decodable audio of a contract format, at most ``max_duration_s``
    long; raise a 400 error otherwise."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
    if size == 0:
        raise EmptyAudio("The audio file is empty (0 bytes)", detected_type="empty")
    detected = detect_format(head) or UNKNOWN
    if detected == "mp3" and id3_end(head) >= size:
        raise EmptyAudio("The mp3 file holds a tag and no audio", detected_type=detected)
    if detected not in AUDIO_FORMATS:
        raise InvalidFileFormat(
            f"The file is not a supported audio format (detected: {detected})", detected_type=detected
        )
    try:
        channels, sample_rate, duration = _probe_with_av(path, detected, max_duration_s)
    except InvalidFileFormat:  # EmptyAudio included
        raise
    except Exception as exc:  # FFmpeg errors, and anything odd a corrupt file provokes
        logger.info("probe of %s failed: %r", path.name, exc)
        raise InvalidFileFormat(
            f"The {detected} file could not be read: it is corrupt or truncated", detected_type=detected
        ) from None
    if duration <= 0:
        raise EmptyAudio("The audio has zero duration", detected_type=detected)
    if duration < MIN_DURATION_S:
        raise EmptyAudio(
            f"The audio is {duration * 1000:.0f} ms long: a call needs at least {MIN_DURATION_S:g} s",
            detected_type=detected,
        )
    if max_duration_s is not None and duration > max_duration_s:
        raise AudioTooLong(duration_s=round(duration, 3), max_duration_s=max_duration_s)
    return AudioInfo(
        format=detected,
        duration_s=round(duration, 3),
        channels=channels,
        sample_rate=sample_rate,
        size_bytes=size,
    )


async def probe_audio_async(path: Path, *, max_duration_s: float | None = None) -> AudioInfo:
    """:func:`probe_audio` in a worker thread."""
    return await asyncio.to_thread(probe_audio, path, max_duration_s=max_duration_s)


def _probe_with_av(path: Path, detected: str, max_duration_s: float | None) -> tuple[int, int, float]:
    """(channels, sample_rate, duration_s) of the first audio stream, after decoding its start."""
    import av  # deferred: PyAV loads FFmpeg's libraries

    options = {"protocol_whitelist": "file"}
    with av.open(str(path), mode="r", format=DEMUXERS[detected], options=options) as container:
        if not container.streams.audio:
            kind = f"{detected} (video only)" if container.streams.video else detected
            raise InvalidFileFormat("The file has no audio stream", detected_type=kind)
        stream = container.streams.audio[0]
        channels, sample_rate = _stream_layout(stream)
        if channels <= 0 or sample_rate <= 0:
            raise InvalidFileFormat("The audio stream has no channels or sample rate", detected_type=detected)
        declared = _declared_duration(container, stream)
        decoded, measured = _scan(container, stream)
        if decoded == 0:
            raise EmptyAudio("The audio stream holds no decodable audio", detected_type=detected)
        if measured is None and declared is None:
            container.seek(0)
            measured = _decoded_span(container, stream, max_duration_s)
    return channels, sample_rate, _choose_duration(declared, measured)


def _stream_layout(stream: Any) -> tuple[int, int]:
    ctx = stream.codec_context
    channels = int(getattr(ctx.layout, "nb_channels", 0) or getattr(ctx, "channels", 0) or 0)
    return channels, int(ctx.sample_rate or 0)


def _declared_duration(container: Any, stream: Any) -> float | None:
    """The stream's duration, else the container's; None when neither is known."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return float(Fraction(container.duration, 1_000_000))
    return None


def _choose_duration(declared: float | None, measured: float | None) -> float:
    """The declared duration, unless the packets tell a different story (a truncated or lying
    header: the audio that will actually be decoded, and billed, is what the packets hold)."""
    if declared is None:
        return measured or 0.0
    if measured is None or abs(declared - measured) <= max(1.0, 0.02 * measured):
        return declared
    return measured


def _scan(container: Any, stream: Any) -> tuple[int, float | None]:
    """One pass over the packets: decode the first ones (the number of samples they hold: 0 means the
    audio does not decode) and measure the span of their timestamps (None if some have none)."""
    import av

    samples = errors = 0
    start: int | None = None
    end: int | None = None
    timed = bool(stream.time_base)
    for count, packet in enumerate(container.demux(stream)):
        if packet.size:
            if packet.pts is None or not packet.duration:
                timed = False
            else:
                start = packet.pts if start is None else min(start, packet.pts)
                end = max(end if end is not None else packet.pts, packet.pts + packet.duration)
        if count < _MAX_DECODE_PACKETS and samples < stream.codec_context.sample_rate:
            try:
                samples += sum(frame.samples for frame in packet.decode())
            except av.FFmpegError:
                errors += 1
                if errors > _MAX_DECODE_PACKETS // 4:
                    raise
    if not timed or start is None or end is None:
        return samples, None
    return samples, float((end - start) * stream.time_base)


def _decoded_span(container: Any, stream: Any, max_duration_s: float | None) -> float:
    """Duration by decoding everything: for streams whose packets carry no timestamps. It stops a
    little past ``max_duration_s`` (the call is refused then; there is no need to decode the rest)."""
    import av

    samples = 0
    rate = stream.codec_context.sample_rate or 0
    limit = (max_duration_s + 1) * rate if max_duration_s is not None else None
    for packet in container.demux(stream):
        try:
            samples += sum(frame.samples for frame in packet.decode())
        except av.FFmpegError:
            continue
        if limit is not None and samples > limit:
            break
    return samples / rate if rate else 0.0
