"""Audio format detection and probing on real files made with espeak-ng and ffmpeg."""

from __future__ import annotations

import pickle
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcov.analyses.audio import AudioInfo, detect_format, probe_audio, probe_audio_async
from callcov.analyses.errors import EmptyAudio, FileTooLarge, InvalidFileFormat

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

DURATION = 3.0


@dataclass(frozen=True)
class Sample:
    name: str
    expected_format: str
    channels: int
    sample_rate: int
    args: tuple[str, ...]


# Contract format -> how it is made. Mono sources are speech, stereo ones speech on the left and a tone
# on the right.
SAMPLES = (
    Sample("call.flac", "flac", 1, 16000, ("-ac", "1", "-ar", "16000", "-c:a", "flac")),
    Sample("call.mp3", "mp3", 2, 44100, ("-ac", "2", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "96k")),
    Sample("call.mp4", "mp4", 2, 48000, ("-ac", "2", "-ar", "48000", "-c:a", "aac", "-f", "mp4")),
    Sample("call.mpeg", "mpeg", 2, 44100, ("-ac", "2", "-ar", "44100", "-c:a", "mp2", "-f", "mpeg")),
    Sample(
        "call.mpga",
        "mp3",
        1,
        22050,
        ("-ac", "1", "-ar", "22050", "-c:a", "libmp3lame", "-f", "mp3", "-id3v2_version", "0"),
    ),
    Sample("call.m4a", "m4a", 1, 16000, ("-ac", "1", "-ar", "16000", "-c:a", "aac", "-f", "ipod")),
    Sample("call.ogg", "ogg", 2, 44100, ("-ac", "2", "-ar", "44100", "-c:a", "libvorbis")),
    Sample("call.wav", "wav", 1, 8000, ("-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le")),
    Sample("call.webm", "webm", 2, 48000, ("-ac", "2", "-ar", "48000", "-c:a", "libopus", "-f", "webm")),
)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every sample, plus a streamed webm (no duration in its header) and a video-only MPEG."""
    root = tmp_path_factory.mktemp("audio")
    speech = root / "speech.wav"
    text = "Thank you for calling. My name is Sam. This call may be recorded."
    subprocess.run(["espeak-ng", "-w", str(speech), text], check=True, timeout=60)
    mono = root / "mono.wav"
    stereo = root / "stereo.wav"
    _ffmpeg("-i", str(speech), "-af", f"apad=whole_dur={DURATION},atrim=0:{DURATION}", str(mono))
    tone = f"sine=frequency=440:duration={DURATION}:sample_rate=22050"
    _ffmpeg(
        *("-i", str(mono), "-f", "lavfi", "-i", tone),
        *("-filter_complex", "[0:a][1:a]amerge=inputs=2[a]", "-map", "[a]", str(stereo)),
    )
    for sample in SAMPLES:
        source = stereo if sample.channels == 2 else mono
        _ffmpeg("-i", str(source), *sample.args, str(root / sample.name))
    with (root / "streamed.webm").open("wb") as out:  # a pipe is not seekable: no duration, no cues
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(mono), "-c:a", "libopus"]
            + ["-f", "webm", "pipe:1"],
            stdout=out,
            check=True,
            timeout=60,
        )
    _ffmpeg(
        *("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-c:v", "mpeg1video", "-f", "mpeg"),
        str(root / "video.mpeg"),
    )
    return root


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_probe_every_contract_format(media: Path, sample: Sample) -> None:
    path = media / sample.name
    assert detect_format(path.read_bytes()[:64]) == sample.expected_format
    info = probe_audio(path)
    assert info.format == sample.expected_format
    assert info.duration_s == pytest.approx(DURATION, abs=0.2)
    assert info.channels == sample.channels
    assert info.sample_rate == sample.sample_rate
    assert info.size_bytes == path.stat().st_size


def test_probe_falls_back_to_packets_when_the_container_has_no_duration(media: Path) -> None:
    import av

    path = media / "streamed.webm"
    with av.open(str(path)) as container:
        assert container.duration is None and container.streams.audio[0].duration is None
    info = probe_audio(path)
    assert (info.format, info.channels, info.sample_rate) == ("webm", 1, 48000)
    assert info.duration_s == pytest.approx(DURATION, abs=0.2)


def test_the_file_name_does_not_matter(media: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "recording.wav"
    shutil.copy(media / "call.ogg", disguised)
    assert probe_audio(disguised).format == "ogg"


@pytest.mark.asyncio
async def test_probe_audio_async(media: Path) -> None:
    info = await probe_audio_async(media / "call.flac")
    assert isinstance(info, AudioInfo)
    assert info.format == "flac"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"RF64\xff\xff\xff\xffWAVEds64", "wav"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS\x00\x02", "ogg"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00", "mp3"),  # MPEG-1 layer III
        (b"\xff\xf3\x48\xc4\x00", "mp3"),  # MPEG-2 layer III
        (b"\xff\xfd\x90\x04\x00", "mp3"),  # MPEG-1 layer II (mp2 is MPEG audio too)
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "m4a"),
        (b"\x00\x00\x00\x1cftypM4B \x00\x00\x02\x00", "m4a"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mp4"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "mp4"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "webm"),
        (b"\x00\x00\x01\xba\x44\x00\x04", "mpeg"),
        (b"\x00\x00\x01\xb3\x04\x00", "mpeg"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"GIF89a\x01\x00", "gif"),
        (b"PK\x03\x04\x14\x00\x00\x00", "zip"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"FORM\x00\x00\x00\x00AIFF", "aiff"),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc", "aac"),  # ADTS
        (b"hello, this is not audio\n", "text"),
        (b"<!DOCTYPE html><html><body>", "text"),
        (b'{"audio": "nope", "\xc3\xa9t\xc3\xa9": 1}', "text"),
        (b"\xef\xbb\xbf#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1/a.mp3", "text"),
        (b"caf\xc3", "text"),  # UTF-8 cut in the middle of a character
        (b"\x00\x01\x02\x03\x04\x05\x06\x07", "unknown"),
        (b"\xff\xff\xff\xff", "unknown"),
        (b"", None),
    ],
)
def test_detect_format(head: bytes, expected: str | None) -> None:
    assert detect_format(head) == expected


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" * 20, "pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "png"),
        (b"Hello, this is a plain text file, not a call recording.\n" * 10, "text"),
        (bytes(range(256)) * 4, "unknown"),
    ],
    ids=["pdf", "png", "text", "binary"],
)
def test_non_audio_is_refused_with_its_type(tmp_path: Path, data: bytes, detected: str) -> None:
    with pytest.raises(InvalidFileFormat) as caught:
        probe_audio(_write(tmp_path / "call.mp3", data))
    assert caught.value.code == "invalid_file_format" and caught.value.status_code == 400
    assert caught.value.details == {"detected_type": detected}


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(EmptyAudio) as caught:
        probe_audio(_write(tmp_path / "empty.wav", b""))
    assert caught.value.code == "invalid_file_format" and caught.value.status_code == 400
    assert "empty" in caught.value.message


@pytest.mark.parametrize("name", ["zero.wav", "zero.flac"])
def test_zero_length_audio_is_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-t", "0", "-ac", "1", "-ar", "16000", str(path))
    with pytest.raises(EmptyAudio) as caught:
        probe_audio(path)
    assert caught.value.details == {"detected_type": name.split(".")[1]}


def test_mp3_with_a_tag_and_no_frames_is_empty(media: Path, tmp_path: Path) -> None:
    data = (media / "call.mp3").read_bytes()
    assert data.startswith(b"ID3")
    tag_size = 0
    for byte in data[6:10]:  # synchsafe: 7 bits a byte
        tag_size = (tag_size << 7) | byte
    tag_end = 10 + tag_size
    with pytest.raises(EmptyAudio):
        probe_audio(_write(tmp_path / "tag-only.mp3", data[:tag_end]))


def test_wav_header_alone_is_refused(media: Path, tmp_path: Path) -> None:
    header = (media / "call.wav").read_bytes()[:44]
    with pytest.raises(InvalidFileFormat) as caught:
        probe_audio(_write(tmp_path / "header-only.wav", header))
    assert caught.value.details == {"detected_type": "wav"}


@pytest.mark.parametrize(
    ("source", "keep", "garbage"),
    [
        ("call.wav", 12, 4000),  # RIFF/WAVE, then no fmt chunk
        ("call.flac", 8, 4000),  # fLaC, then no STREAMINFO
        ("call.flac", 42, 4000),  # a valid STREAMINFO, then garbage frames
        ("call.ogg", 4, 4000),
        ("call.m4a", 24, 4000),  # ftyp box, then garbage
        ("call.webm", 4, 4000),
        ("call.mpga", 4, 4000),  # one frame header, then garbage
        ("call.mp3", 400, 0),  # truncated inside the first frames
    ],
    ids=["wav", "flac-header", "flac-frames", "ogg", "m4a", "webm", "mpga", "mp3-truncated"],
)
def test_corrupt_audio_is_a_400_not_a_crash(
    media: Path, tmp_path: Path, source: str, keep: int, garbage: int
) -> None:
    head = (media / source).read_bytes()[:keep]
    junk = bytes((i * 7919 + 13) % 251 for i in range(garbage))
    with pytest.raises(InvalidFileFormat) as caught:  # EmptyAudio is an InvalidFileFormat
        probe_audio(_write(tmp_path / source, head + junk))
    assert caught.value.code == "invalid_file_format"
    assert caught.value.details["detected_type"] == detect_format(head)


def test_truncated_mp3_keeps_what_is_there(media: Path, tmp_path: Path) -> None:
    data = (media / "call.mp3").read_bytes()
    info = probe_audio(_write(tmp_path / "half.mp3", data[: len(data) // 2]))
    assert info.format == "mp3"
    assert 0.5 < info.duration_s < DURATION


def test_video_without_audio(media: Path) -> None:
    with pytest.raises(InvalidFileFormat) as caught:
        probe_audio(media / "video.mpeg")
    assert caught.value.details == {"detected_type": "mpeg (video only)"}


def test_errors_pickle() -> None:
    for error in (
        InvalidFileFormat(detected_type="pdf"),
        EmptyAudio("empty", detected_type="empty"),
        FileTooLarge(max_size_bytes=10),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (copy.message, copy.details, copy.code) == (error.message, error.details, error.code)
    assert FileTooLarge(max_size_bytes=10).details == {"max_size_bytes": 10}
    assert FileTooLarge.status_code == 413
