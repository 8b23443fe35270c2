"""Speakers and roles for mono calls, with no downloaded weights (``diarization="turns"``).

The method, in five steps:

1. **Pieces.** Whisper's segments are cut into pieces (``whisper_decoding.split_pieces``): each
   Whisper segment is cut again at every pause between two words of at least ``min_pause_s`` (0.3 s)
   and after sentence-final punctuation. Cutting too often is harmless (step 5 joins the pieces again); a missed cut at a change
   of speaker is not, so the cuts are generous.
2. **Voice features** per piece, computed with numpy from the decoded 16 kHz samples between the
   piece's first and last word: the median pitch in semitones, from a normalised-autocorrelation pitch
   track (40 ms frames, 10 ms hop, 60-400 Hz, voiced frames only), and the means of 12 log-mel cepstral
   coefficients (26 mel bands from 80 to 4,000 Hz, DCT-II, c1..c12) over the frames within 30 dB of the
   piece's loudest frame.
3. **Two voices.** The features are z-scored across pieces; pitch weighs 1.5 and the cepstral block 1
   in all (a voice's pitch separates speakers best; the cepstrum adds timbre and line colour). A duration-weighted 2-means, started from the two ends of the first principal axis, splits
   the pieces at least ``min_feature_s`` long; shorter ones take the nearest centre, and pieces without
   usable audio take the previous piece's voice. When the two centres lie closer than
   ``min_separation`` (2.5) times the spread within the clusters, and their median pitches lie less
   than ``distinct_pitch_gap`` (3 semitones) apart, the call is taken as one voice (separation measured
   on synthetic calls: one voice 2.1-2.9, two voices 4.0-5.1; a male and a female voice differ by 6
   semitones or more, so the pitch gap keeps such calls split whatever the separation).
4. **Roles** from what each voice says. Agent cues (thanks for calling, offers help, gives a name,
   reads the recording notice, asks to verify identity, closing pleasantries) add points, customer cues
   (I'm calling about, I need to, I was charged) subtract them, and the voice that speaks first gets a
   small bonus (agents answer inbound calls). When the two voices' scores differ by at least
   ``min_role_margin``, the higher is ``agent`` and the other ``customer``; otherwise they stay ``A``
   (the first to speak) and ``B``.
5. **Turns.** Consecutive pieces of one voice become one turn (``whisper_decoding.build_turns``).

Steps 1 and 5 are shared with stereo calls, whose channels' segments are cut and merged the same way.

Limits: overlapping speech is given to one voice; two voices of the same sex and channel separate less
well; roles need the cues in English. The stereo path needs none of this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from callcov.inference.transcript import Speaker
from deployments.whisper_decoding import SAMPLE_RATE, SpokenSegment, split_pieces

PITCH_WEIGHT = 1.5
MIN_F0, MAX_F0 = 60.0, 400.0
N_MELS, N_CEPS = 26, 12

AGENT_CUES: tuple[tuple[str, float], ...] = (
    (r"\bthanks? (you )?for (calling|contacting|holding|waiting|your patience)\b", 2.0),
    (r"\b(how|what) (can|may|could) i (help|assist|do for) you\b", 2.0),
    (r"\b(call|conversation)s? (may|might|will|is|are) (be )?(being )?(recorded|monitored)\b", 2.0),
    (r"\bwelcome to\b", 1.5),
    (r"\byou('re| are) (speaking|talking) (to|with)\b", 1.5),
    (r"\bmy name is\b", 1.0),
    (r"\b(verify|confirm) (your|the)\b", 1.0),
    (r"\bfor (security|verification) (purposes|reasons)?\b", 1.0),
    (r"\bis there anything else\b", 1.0),
    (r"\bhave a (great|nice|good|lovely|wonderful) (day|evening|afternoon|weekend)\b", 1.0),
    (r"\bi('m| am) (so )?sorry to hear\b", 1.0),
    (r"\blet me (check|look|see|pull|transfer)\b", 1.0),
)
CUSTOMER_CUES: tuple[tuple[str, float], ...] = (
    (r"\bi('m| am) calling (about|because|to|regarding|for)\b", 2.0),
    (r"\bi (would like|want|need) to\b", 1.0),
    (r"\bi (was|have been|got) (charged|billed)\b", 1.0),
    (r"\bcan you help me\b", 1.0),
    (r"\bi have (a|an) (problem|question|complaint|issue)\b", 1.0),
)
FIRST_SPEAKER_BONUS = 0.5


@dataclass(frozen=True)
class DiarizationOptions:
    min_pause_s: float = 0.3
    min_feature_s: float = 0.25
    min_separation: float = 2.5
    distinct_pitch_gap: float = 3.0
    min_role_margin: float = 1.5


def diarize(
    audio: np.ndarray, segments: Sequence[SpokenSegment], options: DiarizationOptions
) -> list[tuple[Speaker, None, SpokenSegment]]:
    """Each piece of a mono transcript with its speaker (see the module docstring)."""
    pieces = split_pieces(segments, options.min_pause_s)
    if not pieces:
        return []
    features = [voice_features(audio, piece.start, piece.end) for piece in pieces]
    durations = [piece.end - piece.start for piece in pieces]
    labels = two_voices(features, durations, options)
    names = name_speakers([piece.text for piece in pieces], labels, options.min_role_margin)
    return [(names[label], None, piece) for label, piece in zip(labels, pieces, strict=True)]


def voice_features(audio: np.ndarray, start: float, end: float) -> np.ndarray | None:
    """[median pitch in semitones above 100 Hz (NaN when unvoiced), c1..c12 means] (step 2)."""
    samples = np.asarray(audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)], dtype=np.float64)
    if len(samples) < SAMPLE_RATE // 10 or not np.any(samples):
        return None
    return np.concatenate([[median_pitch(samples)], cepstral_means(samples)])


def _frames(samples: np.ndarray, size: int, hop: int) -> np.ndarray:
    if len(samples) < size:
        samples = np.pad(samples, (0, size - len(samples)))
    return np.lib.stride_tricks.sliding_window_view(samples, size)[::hop]


def _loud(energy: np.ndarray, db: float = 30.0) -> np.ndarray:
    return energy > energy.max() * 10 ** (-db / 10)


def median_pitch(samples: np.ndarray) -> float:
    """Median F0 of the voiced frames, in semitones above 100 Hz; NaN with fewer than 3 voiced."""
    size, hop = int(0.04 * SAMPLE_RATE), SAMPLE_RATE // 100
    frames = _frames(samples, size, hop)
    frames = frames[_loud((frames**2).mean(axis=1))]
    frames = frames - frames.mean(axis=1, keepdims=True)
    min_lag, max_lag = int(SAMPLE_RATE / MAX_F0), int(SAMPLE_RATE / MIN_F0)
    spectrum = np.fft.rfft(frames, n=2 * size, axis=1)
    corr = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, : max_lag + 2]
    corr = corr / (size - np.arange(max_lag + 2))  # unbiased
    corr = corr / np.maximum(corr[:, :1], 1e-12)
    window = corr[:, min_lag : max_lag + 2]
    best = window.max(axis=1)
    middle = window[:, 1:-1]
    peaks = (middle >= window[:, :-2]) & (middle >= window[:, 2:]) & (middle >= 0.85 * best[:, None])
    voiced = (best > 0.45) & peaks.any(axis=1)
    if voiced.sum() < 3:
        return float("nan")
    lags = min_lag + 1 + np.argmax(peaks[voiced], axis=1)
    return float(np.median(12 * np.log2(SAMPLE_RATE / lags / 100.0)))


def cepstral_means(samples: np.ndarray) -> np.ndarray:
    """Means of c1..c12 of the log-mel cepstrum over the loud frames."""
    size, hop, n_fft = int(0.025 * SAMPLE_RATE), SAMPLE_RATE // 100, 512
    emphasised = np.append(samples[0], samples[1:] - 0.97 * samples[:-1])
    frames = _frames(emphasised, size, hop) * np.hamming(size)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    log_mel = np.log(power @ _mel_bank(n_fft).T + 1e-10)
    loud = _loud(power.sum(axis=1))
    n = np.arange(N_MELS)
    dct = np.cos(np.pi * np.arange(1, N_CEPS + 1)[:, None] * (2 * n + 1) / (2 * N_MELS))
    return np.asarray((log_mel[loud] @ dct.T).mean(axis=0))


def _mel_bank(n_fft: int, low: float = 80.0, high: float = 4000.0) -> np.ndarray:
    def mel(hz: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + hz / 700)

    edges_mel = np.linspace(mel(np.array(low)), mel(np.array(high)), N_MELS + 2)
    edges = 700 * (10 ** (edges_mel / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.asarray(np.clip(np.minimum(rising, falling), 0, None))


def two_voices(
    features: Sequence[np.ndarray | None], durations: Sequence[float], options: DiarizationOptions
) -> list[int]:
    """A voice label (0 or 1) per piece; 0 is the voice of the first piece that has features (step 3)."""
    fit = [i for i, f in enumerate(features) if f is not None and durations[i] >= options.min_feature_s]
    if len(fit) < 2:
        return [0] * len(features)
    known = [i for i, f in enumerate(features) if f is not None]
    points = _scaled(np.array([features[i] for i in known]))
    index = {piece: row for row, piece in enumerate(known)}
    fit_points = points[[index[i] for i in fit]]
    centres, fit_labels, separation = _two_means(fit_points, np.array([durations[i] for i in fit]))
    pitch_gap = _pitch_gap(
        np.array([vector[0] for i in fit if (vector := features[i]) is not None]), fit_labels
    )
    if separation < options.min_separation and not pitch_gap >= options.distinct_pitch_gap:
        return [0] * len(features)
    labels: list[int] = []
    for i, feature in enumerate(features):
        if feature is None:
            labels.append(labels[-1] if labels else -1)
        else:
            distances = np.linalg.norm(centres - points[index[i]], axis=1)
            labels.append(int(np.argmin(distances)))
    first = next(label for label in labels if label >= 0)
    return [(0 if label in (-1, first) else 1) for label in labels]


def _scaled(points: np.ndarray) -> np.ndarray:
    """Z-scores with NaN pitch set to the mean; pitch weighted, the cepstral block sharing weight 1."""
    pitch = points[:, 0]
    pitch[np.isnan(pitch)] = np.nanmean(pitch) if np.any(~np.isnan(pitch)) else 0.0
    z = (points - points.mean(axis=0)) / np.maximum(points.std(axis=0), 1e-6)
    weights = np.array([PITCH_WEIGHT] + [1 / np.sqrt(N_CEPS)] * N_CEPS)
    return np.asarray(z * weights)


def _pitch_gap(pitch: np.ndarray, labels: np.ndarray) -> float:
    """Semitones between the two clusters' median pitch (NaN when one has no voiced piece)."""
    medians = [pitch[(labels == k) & ~np.isnan(pitch)] for k in (0, 1)]
    if any(m.size == 0 for m in medians):
        return float("nan")
    return float(abs(np.median(medians[0]) - np.median(medians[1])))


def _two_means(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Duration-weighted 2-means from the ends of the first principal axis; returns the centres, the
    labels and the centres' distance over the within-cluster spread."""
    centred = points - points.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    projection = centred @ axis
    centres = points[[int(np.argmin(projection)), int(np.argmax(projection))]].copy()
    labels = np.zeros(len(points), dtype=int)
    for _ in range(50):
        distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
        new = np.argmin(distances, axis=1)
        if any(not np.any(new == k) for k in (0, 1)):
            return centres, np.zeros(len(points), dtype=int), 0.0
        centres = np.array([np.average(points[new == k], axis=0, weights=weights[new == k]) for k in (0, 1)])
        if np.array_equal(new, labels):
            break
        labels = new
    spread = np.sqrt(np.average(np.sum((points - centres[labels]) ** 2, axis=1), weights=weights))
    return centres, labels, float(np.linalg.norm(centres[0] - centres[1]) / max(spread, 1e-6))


def cue_score(text: str) -> float:
    """Agent cue points minus customer cue points in ``text`` (step 4)."""
    lowered = text.lower().replace("\u2019", "'")
    agent = sum(weight for pattern, weight in AGENT_CUES if re.search(pattern, lowered))
    customer = sum(weight for pattern, weight in CUSTOMER_CUES if re.search(pattern, lowered))
    return agent - customer


def name_speakers(texts: Sequence[str], labels: Sequence[int], min_margin: float) -> dict[int, Speaker]:
    """``agent``/``customer`` when the cues agree clearly enough, else ``A`` (voice 0) and ``B``."""
    scores = {
        label: cue_score(" ".join(t for t, lab in zip(texts, labels, strict=True) if lab == label))
        for label in (0, 1)
    }
    scores[0] += FIRST_SPEAKER_BONUS
    if abs(scores[0] - scores[1]) < min_margin:
        return {0: "A", 1: "B"}
    agent = 0 if scores[0] > scores[1] else 1
    return {agent: "agent", 1 - agent: "customer"}
