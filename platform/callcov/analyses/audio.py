"""Audio format detection (from content, never the file name) and probing with PyAV.

Names returned by :func:`detect_format` and carried in ``AudioInfo.format``, per contract format:

| contract | name    | recognised by                                                            |
|----------|---------|--------------------------------------------------------------------------|
| wav      | ``wav`` | ``RIFF``/``RF64`` + ``WAVE``                                             |
| flac     | ``flac``| ``fLaC``                                                                 |
| ogg      | ``ogg`` | ``OggS`` (Vorbis, Opus, FLAC in Ogg)                                     |
| mp3/mpga | ``mp3`` | an ID3v2 tag or an MPEG-1/2 audio frame sync (layers I-III); mpga is mp3 |
| m4a      | ``m4a`` | ISO BMFF ``ftyp`` with brand ``M4A``/``M4B``/``M4P``                      |
| mp4      | ``mp4`` | ISO BMFF ``ftyp`` with any other brand (or a leading moov/mdat/wide box) |
| webm     | ``webm``| EBML magic ``1A45DFA3`` (Matroska audio is reported as webm too)         |
| mpeg     | ``mpeg``| MPEG program stream pack ``000001BA`` or sequence header ``000001B3``    |

Non-audio content is named for error details: ``pdf``, ``png``, ``jpeg``, ``gif``, ``zip``, ``gzip``,
``aiff``, ``aac`` (raw ADTS, not a contract format) and ``text`` (plain text, HTML, JSON, playlists);
anything else is ``unknown``.
"""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from callcov.analyses.errors import EmptyAudio, InvalidFileFormat

logger = logging.getLogger("callcov.analyses.audio")

HEAD_BYTES = 64
AUDIO_FORMATS = frozenset({"wav", "flac", "ogg", "mp3", "m4a", "mp4", "webm", "mpeg"})
UNKNOWN = "unknown"

# The demuxer PyAV is told to use for each detected format: FFmpeg never guesses on its own, so a
# crafted file can't reach demuxers that open other files or URLs (hls, concat, ...).
_DEMUXERS = {
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg",
    "mp3": "mp3",
    "m4a": "mov",
    "mp4": "mov",
    "webm": "matroska",
    "mpeg": "mpeg",
}
_M4A_BRANDS = (b"M4A ", b"M4B ", b"M4P ")
_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"fLaC", "flac"),
    (b"OggS", "ogg"),
    (b"ID3", "mp3"),
    (b"\x1a\x45\xdf\xa3", "webm"),
    (b"\x00\x00\x01\xba", "mpeg"),
    (b"\x00\x00\x01\xb3", "mpeg"),
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "gzip"),
)
_MAX_DECODE_PACKETS = 64


class AudioInfo(BaseModel):
    """What probing found: the detected format and the first audio stream's properties."""

    format: str
    duration_s: float
    channels: int
    sample_rate: int
    size_bytes: int


def detect_format(head: bytes) -> str | None:
    """Name the content type of a file from its first bytes (see the module table); None if empty."""
    if not head:
        return None
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] in _BMFF_BOXES:
        return "m4a" if head[4:8] == b"ftyp" and head[8:12] in _M4A_BRANDS else "mp4"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    frame = _mpeg_audio_frame(head)
    if frame:
        return frame
    if _looks_like_text(head):
        return "text"
    return UNKNOWN


def _mpeg_audio_frame(head: bytes) -> str | None:
    """``mp3`` for an MPEG audio frame header, ``aac`` for an ADTS header, else None."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    if layer == 0:
        return "aac" if head[1] & 0xF6 == 0xF0 else None
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    if version == 1 or bitrate == 0xF or rate == 0x3:
        return None
    return "mp3"


def _looks_like_text(head: bytes) -> bool:
    """True for UTF-8 (or UTF-16 with a BOM) text without control characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="ignore")
    if len(text.encode()) < len(head.removeprefix(b"\xef\xbb\xbf")) - 3:  # more than a cut-off character
        return False
    return all(ch.isprintable() or ch in "\t\n\r\f" for ch in text)


def _id3_end(head: bytes) -> int:
    """Where the ID3v2 tag at the start of ``head`` ends (0 if there is none)."""
    if len(head) < 10 or not head.startswith(b"ID3"):
        return 0
    size = 0
    for byte in head[6:10]:  # a "synchsafe" integer: 7 bits a byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


# Shorter than this is no call: a truncated file, or a header with a few stray bytes.
MIN_DURATION_S = 0.1


def probe_audio(path: Path) -> AudioInfo:
    """Check that ``path`` holds decodable audio of a contract format; raise a 400 error otherwise."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
    if size == 0:
        raise EmptyAudio("The audio file is empty (0 bytes)", detected_type="empty")
    detected = detect_format(head) or UNKNOWN
    if detected == "mp3" and _id3_end(head) >= size:
        raise EmptyAudio("The mp3 file holds a tag and no audio", detected_type=detected)
    if detected not in AUDIO_FORMATS:
        raise InvalidFileFormat(
            f"The file is not a supported audio format (detected: {detected})", detected_type=detected
        )
    try:
        channels, sample_rate, duration = _probe_with_av(path, detected)
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
    return AudioInfo(
        format=detected,
        duration_s=round(duration, 3),
        channels=channels,
        sample_rate=sample_rate,
        size_bytes=size,
    )


async def probe_audio_async(path: Path) -> AudioInfo:
    """:func:`probe_audio` in a worker thread."""
    return await asyncio.to_thread(probe_audio, path)


def _probe_with_av(path: Path, detected: str) -> tuple[int, int, float]:
    """(channels, sample_rate, duration_s) of the first audio stream, after decoding its start."""
    import av  # deferred: PyAV loads FFmpeg's libraries

    options = {"protocol_whitelist": "file"}
    with av.open(str(path), mode="r", format=_DEMUXERS[detected], options=options) as container:
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
            measured = _decoded_span(container, stream)
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


def _decoded_span(container: Any, stream: Any) -> float:
    """Duration by decoding everything: for streams whose packets carry no timestamps."""
    import av

    samples = 0
    for packet in container.demux(stream):
        try:
            samples += sum(frame.samples for frame in packet.decode())
        except av.FFmpegError:
            continue
    rate = stream.codec_context.sample_rate or 0
    return samples / rate if rate else 0.0
