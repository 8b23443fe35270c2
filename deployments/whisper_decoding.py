"""faster-whisper behind the transcription deployment: model files, audio decoding (bounded, with the
demuxer the submission probe pinned), one channel's transcription, and turns built from timed pieces.
``faster_whisper`` and ``av`` are imported inside the functions that need them, so this module imports
on any machine."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from callcov.config import get_settings
from callcov.inference.audio import HEAD_BYTES, FormatMismatch, decode_limit_s, pinned_demuxer
from callcov.inference.transcript import Segment, Speaker, Word
from deployments.model_assets import WHISPER_BASE, ensure_asset, models_dir

SAMPLE_RATE = 16_000
PACKAGED_MODELS = {"base": WHISPER_BASE, "whisper-base": WHISPER_BASE}
# Two channels this similar (normalised correlation) are one signal recorded twice: a mono call.
DUAL_MONO_CORRELATION = 0.98
# VAD speech regions closer than this join into one clip of at most CLIP_MAX_S (``speech_clips``).
CLIP_MAX_GAP_S = 10.0
CLIP_MAX_S = 30.0


class AudioError(ValueError):
    """The audio cannot be read or decoded. Permanent: retrying will not help."""


class AudioTooLong(AudioError):
    """The audio decodes longer than its bound: it is not the file the submission probed."""


@dataclass
class SpokenWord:
    text: str  # as Whisper spells it, with its leading space
    start: float
    end: float
    probability: float


@dataclass
class SpokenSegment:
    """A timed stretch of text from one channel (a Whisper segment, or a piece of one)."""

    text: str
    start: float
    end: float
    confidence: float
    words: list[SpokenWord] = field(default_factory=list)


@dataclass
class ChannelResult:
    segments: list[SpokenSegment]
    language: str
    language_probability: float
    speech_s: float  # seconds of speech the VAD kept (the whole channel without VAD)


def resolve_model(model: str, model_dir: str | None) -> tuple[Path, str]:
    """The folder of a CTranslate2 Whisper model and the name to record for it.

    ``base`` is assembled from the PyPI packages (checksum-verified). An existing folder is used as is.
    Any other name (``large-v3``) must already sit under ``model_dir`` (default:
    ``$CALLCOV_INFERENCE__MODEL_DIR``, else ``$CALLCOV_DATA_DIR/models``) as ``<name>``,
    ``faster-whisper-<name>`` or ``whisper-<name>``. Nothing is ever downloaded.
    """
    root = Path(model_dir or os.environ.get("CALLCOV_INFERENCE__MODEL_DIR") or models_dir())
    if model in PACKAGED_MODELS:
        return ensure_asset(PACKAGED_MODELS[model], root), "faster-whisper/base"
    if Path(model).is_dir():
        return Path(model), f"faster-whisper/{Path(model).name}"
    candidates = [root / model, root / f"faster-whisper-{model}", root / f"whisper-{model}"]
    for candidate in candidates:
        if (candidate / "model.bin").is_file():
            return candidate, f"faster-whisper/{model}"
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"Whisper model {model!r} not found (looked in {tried}); it is never downloaded")


def resolve_device(device: str, compute_type: str | None) -> tuple[str, str]:
    """``auto`` becomes ``cuda`` when CTranslate2 sees a GPU; the compute type defaults per device."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return device, compute_type or ("float16" if device == "cuda" else "int8")


def load_model(path: Path, device: str, compute_type: str, cpu_threads: int, num_workers: int) -> Any:
    """A ``faster_whisper.WhisperModel`` from local files only."""
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(path),
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        num_workers=num_workers,
        local_files_only=True,
    )


def local_path(audio_path: str) -> Path:
    """A readable local file from a path or a ``file://`` URI."""
    if audio_path.startswith("file://"):
        audio_path = audio_path[len("file://") :]
    elif "://" in audio_path:
        raise AudioError(f"the transcriber reads local files only, not {audio_path.split('://')[0]} URIs")
    path = Path(audio_path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    return path


def decode_channels(
    path: Path, *, audio_format: str | None = None, max_duration_s: float | None = None
) -> list[np.ndarray]:
    """Float32 16 kHz samples: one array for a mono call, two (left, right) for a stereo one.

    The file is opened with the demuxer of ``audio_format``, the format the submission probe detected
    (``callcov.inference.audio``), never one FFmpeg guesses, and a file whose content is not of that
    format is refused: the decoder reads the file the probe measured. Decoding stops with
    ``AudioTooLong`` past ``max_duration_s`` (the probed duration plus a margin; None: the maximum
    call duration), so memory is bounded by it. The samples are those of
    ``faster_whisper.decode_audio``. A stereo file whose channels carry the same signal (dual mono)
    counts as mono; files with more than two channels are downmixed to stereo.
    """
    import av

    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
    try:
        demuxer = pinned_demuxer(head, audio_format)
    except FormatMismatch as exc:
        raise AudioError(f"the audio cannot be decoded: {exc}") from exc
    limit_s = max_duration_s if max_duration_s is not None else default_decode_limit_s()
    options = {"protocol_whitelist": "file"}
    try:
        with av.open(
            str(path), mode="r", format=demuxer, options=options, metadata_errors="ignore"
        ) as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio stream")
            channels = 2 if container.streams.audio[0].channels >= 2 else 1
            samples = _decode_bounded(container, channels, limit_s)
    except av.FFmpegError as exc:
        raise AudioError(f"the audio could not be decoded: {exc}") from exc
    if channels == 1:
        return [samples[0]]
    left, right = samples
    if _correlation(left, right) >= DUAL_MONO_CORRELATION:
        return [(left + right) / 2]
    return [left, right]


def default_decode_limit_s() -> float:
    """The decode bound of a request that names none: the maximum call duration, plus the margin."""
    return decode_limit_s(get_settings().audio.max_duration_s)


def _decode_bounded(container: Any, channels: int, limit_s: float) -> np.ndarray:
    """The first audio stream as float32 (channels x samples) at 16 kHz, as faster-whisper decodes it
    (s16 through FFmpeg's resampler, frames grouped by 500,000 samples); ``AudioTooLong`` as soon as
    it holds more than ``limit_s`` seconds. The buffer is the bound's size (pages are only touched as
    they fill), trimmed to what was decoded."""
    import av

    limit = math.ceil(limit_s * SAMPLE_RATE)
    out = np.empty((channels, limit), dtype=np.float32)
    resampler = av.audio.resampler.AudioResampler(
        format="s16", layout="stereo" if channels == 2 else "mono", rate=SAMPLE_RATE
    )
    filled = 0
    for group in itertools.chain(_grouped(_valid_frames(container.decode(audio=0))), [None]):
        for frame in resampler.resample(group):
            block = frame.to_ndarray().reshape(-1, channels).T  # packed s16: interleaved channels
            if filled + block.shape[1] > limit:
                raise AudioTooLong(f"the audio decodes longer than {limit_s:.1f} s, the bound of this call")
            out[:, filled : filled + block.shape[1]] = block
            filled += block.shape[1]
    out = out[:, :filled] if filled > 0.9 * limit else out[:, :filled].copy()  # free a large unused tail
    out /= 32768.0
    return out


def _valid_frames(frames: Iterator[Any]) -> Iterator[Any]:
    """The decoded frames, skipping those FFmpeg finds invalid (as faster-whisper does)."""
    import av

    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def _grouped(frames: Iterator[Any], num_samples: int = 500_000) -> Iterator[Any]:
    """Frames joined into blocks of ``num_samples`` before resampling (as faster-whisper does)."""
    import av

    fifo = av.audio.fifo.AudioFifo()
    for frame in frames:
        frame.pts = None  # no timestamp check
        fifo.write(frame)
        if fifo.samples >= num_samples:
            yield fifo.read()
    if fifo.samples > 0:
        yield fifo.read()


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / norm if norm > 0 else (1.0 if not a.any() and not b.any() else 0.0)


def transcribe_channel(engine: Any, audio: np.ndarray, options: dict[str, Any]) -> ChannelResult:
    """Run Whisper on one channel. ``engine`` is a ``WhisperModel`` or a ``BatchedInferencePipeline``;
    ``options`` are keyword arguments of its ``transcribe``. Times are seconds in the original audio."""
    duration = len(audio) / SAMPLE_RATE
    if duration < 0.1:
        return ChannelResult([], options.get("language") or "en", 0.0, 0.0)
    clipped, speech_s = speech_clips(audio, options)
    # No speech found: faster-whisper's own VAD path (which finds none either) keeps its language info.
    raw_segments, info = engine.transcribe(audio, **(clipped if speech_s > 0 else options))
    segments = [_segment(raw, duration) for raw in raw_segments]
    return ChannelResult(
        [s for s in segments if s.text], info.language, float(info.language_probability), float(speech_s)
    )


def speech_clips(audio: np.ndarray, options: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """With ``vad_filter``, the VAD's speech regions become ``clip_timestamps``: Whisper decodes each
    region where it lies, with the silence around it, instead of faster-whisper's VAD path, which
    joins the regions end to end. Joined, the turns of one stereo channel (whose gaps are the other
    speaker's turns) run into each other, and Whisper reads, say, a card number and the expiry date
    the customer gives next as one number. Returns the options to decode with and the seconds of
    speech kept (the whole channel without VAD)."""
    if not options.get("vad_filter"):
        return options, len(audio) / SAMPLE_RATE
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    batched = "batch_size" in options
    parameters = dict(options.get("vad_parameters") or {})
    if batched:  # each clip is one chunk of the batched pipeline: at most 30 s
        parameters["max_speech_duration_s"] = min(parameters.get("max_speech_duration_s", 30.0), 30.0)
    regions = merge_regions(
        [
            (r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE)
            for r in get_speech_timestamps(audio, VadOptions(**parameters))
        ]
    )
    rest = {k: v for k, v in options.items() if k not in ("vad_filter", "vad_parameters")}
    clips: list[Any] = (
        [{"start": start, "end": end} for start, end in regions]
        if batched
        else [t for region in regions for t in region]
    )
    return {**rest, "vad_filter": False, "clip_timestamps": clips}, sum(e - s for s, e in regions)


def merge_regions(
    regions: Sequence[tuple[float, float]], max_gap_s: float = CLIP_MAX_GAP_S, max_clip_s: float = CLIP_MAX_S
) -> list[tuple[float, float]]:
    """Speech regions joined, with the silence between them, into clips of at most ``max_clip_s``
    where the silence is shorter than ``max_gap_s``."""
    clips: list[tuple[float, float]] = []
    for start, end in regions:
        if clips and start - clips[-1][1] < max_gap_s and end - clips[-1][0] <= max_clip_s:
            clips[-1] = (clips[-1][0], end)
        else:
            clips.append((start, end))
    return clips


def _segment(raw: Any, duration: float) -> SpokenSegment:
    words = [
        SpokenWord(w.word, _clock(w.start, duration), _clock(w.end, duration), _unit(float(w.probability)))
        for w in raw.words or ()
        if w.word.strip()
    ]
    if words:
        start, end = words[0].start, words[-1].end
        confidence = sum(w.probability for w in words) / len(words)
    else:
        start, end = _clock(raw.start, duration), _clock(raw.end, duration)
        confidence = _unit(math.exp(raw.avg_logprob))
    return SpokenSegment(raw.text.strip(), start, end, confidence, words)


def _clock(seconds: float, duration: float) -> float:
    return round(min(max(float(seconds), 0.0), duration), 2)


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def split_pieces(segments: Sequence[SpokenSegment], min_pause_s: float) -> list[SpokenSegment]:
    """Cut segments at pauses between words and after sentence ends, so a segment that spans the other
    speaker's turn (VAD-merged chunks, batched decoding) comes apart; ``build_turns`` joins the pieces
    of one speaker again. Segments without words stay whole."""
    pieces: list[SpokenSegment] = []
    for segment in segments:
        if not segment.words:
            pieces.append(segment)
            continue
        current = [segment.words[0]]
        for previous, word in pairwise(segment.words):
            if word.start - previous.end >= min_pause_s or previous.text.rstrip()[-1:] in {".", "?", "!"}:
                pieces.append(_piece(current))
                current = []
            current.append(word)
        pieces.append(_piece(current))
    return pieces


def _piece(words: list[SpokenWord]) -> SpokenSegment:
    return SpokenSegment(
        text="".join(w.text for w in words).strip(),
        start=words[0].start,
        end=words[-1].end,
        confidence=sum(w.probability for w in words) / len(words),
        words=words,
    )


def build_turns(
    labelled: Iterable[tuple[Speaker, int | None, SpokenSegment]], turn_gap_s: float
) -> list[Segment]:
    """Time-ordered turns: consecutive pieces of one speaker closer than ``turn_gap_s`` become one."""
    ordered = sorted(labelled, key=lambda item: (item[2].start, item[2].end))
    groups: list[tuple[Speaker, int | None, list[SpokenSegment]]] = []
    for speaker, channel, piece in ordered:
        last = groups[-1] if groups else None
        if last and last[0] == speaker and last[1] == channel and piece.start - last[2][-1].end <= turn_gap_s:
            last[2].append(piece)
        else:
            groups.append((speaker, channel, [piece]))
    return [_turn(speaker, channel, pieces) for speaker, channel, pieces in groups]


def _turn(speaker: Speaker, channel: int | None, pieces: Sequence[SpokenSegment]) -> Segment:
    spans = [max(p.end - p.start, 0.01) for p in pieces]
    confidence = sum(p.confidence * s for p, s in zip(pieces, spans, strict=True)) / sum(spans)
    return Segment(
        speaker=speaker,
        channel=channel,
        text=_join_text(pieces),
        start=min(p.start for p in pieces),
        end=max(p.end for p in pieces),
        confidence=_unit(confidence),
        words=[
            Word(text=w.text.strip(), start=w.start, end=w.end, probability=w.probability)
            for p in pieces
            for w in p.words
        ],
    )


def _join_text(pieces: Sequence[SpokenSegment]) -> str:
    """Whisper's own spacing (its words carry their leading spaces) where all pieces have words."""
    if all(p.words for p in pieces):
        return "".join(w.text for p in pieces for w in p.words).strip()
    return " ".join(p.text for p in pieces)
