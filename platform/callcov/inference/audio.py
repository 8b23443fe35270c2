"""What the submission probe and the transcriber's decoder must agree on, so that a file cannot be one
thing to the probe and another to the decoder: the format is detected from the content (never the
file name), each format has one pinned FFmpeg demuxer, and the decoder stops a little past the
duration the probe measured (``decode_limit_s``).

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

HEAD_BYTES = 64
AUDIO_FORMATS = frozenset({"wav", "flac", "ogg", "mp3", "m4a", "mp4", "webm", "mpeg"})
UNKNOWN = "unknown"

# The demuxer PyAV is told to use for each detected format: FFmpeg never guesses on its own, so a
# crafted file can't reach demuxers that open other files or URLs (hls, concat, ...).
DEMUXERS = {
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


def id3_end(head: bytes) -> int:
    """Where the ID3v2 tag at the start of ``head`` ends (0 if there is none)."""
    if len(head) < 10 or not head.startswith(b"ID3"):
        return 0
    size = 0
    for byte in head[6:10]:  # a "synchsafe" integer: 7 bits a byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


class FormatMismatch(ValueError):
    """The file's content is not of the format it was probed as."""


def pinned_demuxer(head: bytes, probed: str | None) -> str:
    """The FFmpeg demuxer to open a file with: the one of the format it was probed as, after checking
    that its first bytes still say that format (``probed`` None: the format they say)."""
    detected = detect_format(head) or UNKNOWN
    if probed is not None and detected != probed:
        raise FormatMismatch(f"the file was probed as {probed} but its content is {detected}")
    if detected not in DEMUXERS:
        raise FormatMismatch(f"{detected} is not a supported audio format")
    return DEMUXERS[detected]


# The decoder may produce this much more audio than the probe measured (resampler and codec padding,
# a header's rounding): at least 5 s, else 2 %.
DECODE_MARGIN_S = 5.0
DECODE_MARGIN_RATIO = 0.02


def decode_limit_s(probed_s: float) -> float:
    """The most audio (seconds) the transcriber may decode from a file the probe measured at
    ``probed_s``; more means the file is not what was probed (and billed), and it is refused."""
    return probed_s + max(DECODE_MARGIN_S, DECODE_MARGIN_RATIO * probed_s)
