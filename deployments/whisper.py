"""The ``whisper`` application: faster-whisper transcription of call recordings.

Stereo calls are split into channels (the agent's channel is ``agent_channel``, the other is the
customer's); each channel is transcribed with word timestamps, and the turns are merged in time order
(``diarization="channels"``). Mono calls are transcribed once and split into speakers and roles by
``deployments.diarization`` (``diarization="turns"``).

Word timestamps stay on by default: with the VAD filter, only word-level times are mapped back to the
original clock reliably (``docs/feasibility.md`` §10), and compliance checks need true times.

Both channels of a stereo call are transcribed at the same time, each in a thread of its own, in every
mode (CTranslate2 releases the GIL). With ``num_workers: 1`` the model runs one decode at a time, so
the channels overlap their VAD, features and word alignment with each other's decode; ``num_workers:
2`` runs two decodes in parallel (``cpu_threads`` is per worker: halve it on a small CPU).

Batching: ``batch_size > 0`` decodes the speech chunks (VAD chunks of up to 30 s, as mel features) of
every call in flight on the replica, both channels of each, together in batches of up to
``batch_size`` (``deployments/whisper_batching.py``): one thread runs the model on batches grouped by
language and decoding options, waiting at most ``batch_wait_timeout_s`` for a batch to fill, while the
calls' threads do their VAD and language detection (per channel, as before) and the replica's event
loop keeps taking calls. A call's transcript is the one faster-whisper's per-call
``BatchedInferencePipeline`` gives (same text, same word times). ``max_ongoing_requests`` bounds the
calls whose chunks can share a batch; ``batch_stats()`` reports the batches run (chunks, calls and
channels in each). Batching is for the GPU, where one chunk leaves the device mostly idle (not yet
measured here); on 2 CPU cores it gains little (about 7 %, within the noise: ``docs/benchmarks.md``,
"Transcription: cross-call batching"), so the CPU config keeps 0, the sequential decoder.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import serve
from ray.serve import Application

from callcov.config import get_settings
from callcov.inference.ports import InferenceError, TranscriptionRequest
from callcov.inference.transcript import Speaker, Transcript
from callcov.storage.objects import Storage, build_storage
from deployments.diarization import DiarizationOptions, diarize
from deployments.whisper_batching import ChunkBatcher, channel_engine, decode_batch
from deployments.whisper_decoding import (
    SAMPLE_RATE,
    AudioError,
    ChannelResult,
    build_turns,
    decode_channels,
    load_model,
    local_path,
    resolve_device,
    resolve_model,
    split_pieces,
    transcribe_channel,
)

__all__ = ["ARGS_MODEL", "AudioError", "WhisperArgs", "WhisperTranscriber", "WhisperTunables", "build_app"]


class WhisperTunables(BaseModel):
    """Settings a running replica may change through ``user_config`` / ``reconfigure``."""

    model_config = ConfigDict(extra="forbid")

    beam_size: int = Field(default=5, ge=1, le=20)
    vad_filter: bool = True
    # Silero VAD options (faster_whisper.vad.VadOptions), e.g. {"min_silence_duration_ms": 500}.
    vad_parameters: dict[str, float] | None = None
    word_timestamps: bool = True
    language: str | None = None  # None: detected by Whisper
    # Segments are cut at pauses between words this long (seconds), then pieces of one speaker closer
    # than turn_gap_s join into one turn.
    min_pause_s: float = Field(default=0.3, gt=0)
    turn_gap_s: float = Field(default=2.0, ge=0)
    # Mono calls (deployments.diarization): below this separation the call is one voice; the cue
    # margin needed to name the roles agent/customer rather than A/B.
    min_voice_separation: float = Field(default=2.5, ge=0)
    min_role_margin: float = Field(default=1.5, ge=0)
    # With batch_size > 0: how long the oldest waiting chunk may wait for a batch to fill (seconds).
    batch_wait_timeout_s: float = Field(default=0.05, ge=0, le=10)


class WhisperArgs(WhisperTunables):
    """Typed ``args`` of the ``whisper`` application in ``configs/*.yaml``."""

    name: str = "whisper"
    # "base" (assembled from the PyPI packages), a local folder, or a name found under model_dir.
    model: str = "base"
    model_dir: str | None = None
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    # Seconds for a replica to come up from nothing; required for min_replicas 0 (deployments/capacity.py).
    cold_start_s: float | None = Field(default=None, gt=0)
    cpu_threads: int = Field(default=0, ge=0)  # 0: CTranslate2's default
    num_workers: int = Field(default=1, ge=1)  # concurrent decodes inside one model
    batch_size: int = Field(default=0, ge=0)  # > 0: chunks of all calls decoded in batches (GPU)
    agent_channel: Literal[0, 1] = 0
    warmup: bool = True
    max_ongoing_requests: int = Field(default=2, ge=1)
    num_replicas: int | Literal["auto"] | None = None  # None: 1 unless autoscaling_config is set
    autoscaling_config: dict[str, Any] | None = None
    num_cpus: float = Field(default=1, ge=0)
    num_gpus: float = Field(default=0, ge=0)
    # Custom Ray resources, e.g. {"whisper": 1} to land on the gpu_whisper nodes of ray-cluster.yaml.
    resources: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one_scaling_mode(self) -> WhisperArgs:
        if self.num_replicas is not None and self.autoscaling_config is not None:
            raise ValueError("set num_replicas or autoscaling_config, not both")
        return self


ARGS_MODEL = WhisperArgs


class WhisperTranscriber:
    """Implements ``callcov.inference.ports.Transcriber``. A plain class: ``build_app`` makes it a Serve
    deployment, and tests construct it directly. ``model`` injects a loaded ``WhisperModel`` (or a
    double with the same ``transcribe``)."""

    def __init__(
        self,
        args: WhisperArgs | dict[str, Any] | None = None,
        *,
        model: Any = None,
        storage: Storage | None = None,
    ) -> None:
        self.args = args if isinstance(args, WhisperArgs) else WhisperArgs.model_validate(args or {})
        # Built on first need from CallCov's settings (the replica's environment).
        self._storage = storage
        self.tunables = WhisperTunables.model_validate(
            self.args.model_dump(include=set(WhisperTunables.model_fields))
        )
        if model is None:
            path, self.model_name = resolve_model(self.args.model, self.args.model_dir)
            device, compute_type = resolve_device(self.args.device, self.args.compute_type)
            model = load_model(path, device, compute_type, self.args.cpu_threads, self.args.num_workers)
        else:
            self.model_name = f"faster-whisper/{self.args.model}"
        self._model = model
        self._batcher: ChunkBatcher | None = None
        if self.args.batch_size > 0:
            decode = partial(decode_batch, model)
            self._batcher = ChunkBatcher(decode, self.args.batch_size, self.tunables.batch_wait_timeout_s)
        self._calls = itertools.count(1)
        # When each channel's transcription ran (monotonic seconds), for batch_stats().
        self._channel_spans: deque[dict[str, Any]] = deque(maxlen=64)
        if self.args.warmup:
            self._warm_up()

    async def transcribe(self, request: TranscriptionRequest | dict[str, Any]) -> Transcript:
        """Transcribe one call; the blocking work runs in a thread so the replica's loop stays free.
        On a node without the dispatcher's copy of the file, the audio is fetched by its storage URI."""
        req = TranscriptionRequest.model_validate(request)
        if req.audio_uri and not Path(req.audio_path).is_file():
            if self._storage is None:
                self._storage = build_storage(get_settings())
            try:
                path = await self._storage.fetch(req.audio_uri)
            except FileNotFoundError as exc:
                raise AudioError(f"audio file not found in storage: {req.audio_uri}") from exc
            req = req.model_copy(update={"audio_path": str(path)})
        return await asyncio.to_thread(self.transcribe_sync, req)

    def transcribe_sync(self, request: TranscriptionRequest | dict[str, Any]) -> Transcript:
        """The blocking transcription (also used by batch jobs and tests)."""
        req = TranscriptionRequest.model_validate(request)
        tunables = self.tunables  # one consistent snapshot, even if reconfigure runs meanwhile
        agent_channel = (
            req.agent_channel if "agent_channel" in req.model_fields_set else self.args.agent_channel
        )
        if agent_channel not in (0, 1):
            raise AudioError(f"agent_channel must be 0 or 1, not {agent_channel}")
        channels = decode_channels(
            local_path(req.audio_path), audio_format=req.audio_format, max_duration_s=req.max_duration_s
        )
        options = self._options(tunables, req.language or tunables.language)
        try:
            results = self._run_channels(channels, options, tunables)
        except RuntimeError as exc:  # CTranslate2 failures (CUDA out of memory, device lost): retried
            raise InferenceError(f"transcription failed: {exc}") from exc
        if len(channels) == 2:
            roles: dict[int, Speaker] = {agent_channel: "agent", 1 - agent_channel: "customer"}
            labelled = [
                (roles[ch], ch, piece)
                for ch, result in enumerate(results)
                for piece in split_pieces(result.segments, tunables.min_pause_s)
            ]
            diarization: Literal["channels", "turns"] = "channels"
        else:
            diarization_options = DiarizationOptions(
                min_pause_s=tunables.min_pause_s,
                min_separation=tunables.min_voice_separation,
                min_role_margin=tunables.min_role_margin,
            )
            labelled = list(diarize(channels[0], results[0].segments, diarization_options))
            diarization = "turns"
        return Transcript(
            language=max(results, key=lambda r: r.speech_s).language,
            duration_s=round(len(channels[0]) / SAMPLE_RATE, 3),
            segments=build_turns(labelled, tunables.turn_gap_s),
            diarization=diarization,
            model=self.model_name,
        )

    def check_health(self) -> None:
        """Serve's periodic probe: cheap, since a real decode on every probe would cost a CPU replica
        seconds per minute. The warm-up clip in the constructor is the decode check."""
        if self._model is None:
            raise RuntimeError("the Whisper model is not loaded")
        if self._batcher is not None and not self._batcher.alive():
            raise RuntimeError("the Whisper batch decoder has stopped")

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply ``user_config`` tunables (beam size, VAD, turn settings, batch wait) without reloading
        the model."""
        self.tunables = WhisperTunables.model_validate({**self.tunables.model_dump(), **(user_config or {})})
        if self._batcher is not None:
            self._batcher.wait_s = self.tunables.batch_wait_timeout_s

    def batch_stats(self) -> dict[str, Any]:
        """For tests and benches: the batches run (``recent``: chunks, calls and channels in each) and
        when the latest channels ran (``channels``: call, channel, start, end in monotonic seconds)."""
        stats: dict[str, Any] = (
            self._batcher.stats()
            if self._batcher is not None
            else {"batch_size": 0, "batches": 0, "chunks": 0, "queued": 0, "recent": []}
        )
        return {**stats, "channels": list(self._channel_spans)}

    def close(self) -> None:
        """Stop the batch decoder's thread (tests and benches; a replica just exits)."""
        if self._batcher is not None:
            self._batcher.close()

    def _options(self, tunables: WhisperTunables, language: str | None) -> dict[str, Any]:
        return {
            "language": language,
            "beam_size": tunables.beam_size,
            "vad_filter": tunables.vad_filter,
            "vad_parameters": dict(tunables.vad_parameters) if tunables.vad_parameters else None,
            "word_timestamps": tunables.word_timestamps,
        }

    def _run_channels(
        self, channels: list[np.ndarray], options: dict[str, Any], tunables: WhisperTunables
    ) -> list[ChannelResult]:
        """The channels of one call, a stereo call's two at the same time (each in a thread)."""
        call = next(self._calls)
        if len(channels) == 1:
            return [self._run(channels[0], options, tunables, call, 0)]
        with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="whisper-channel") as pool:
            futures = [
                pool.submit(self._run, audio, options, tunables, call, channel)
                for channel, audio in enumerate(channels)
            ]
            return [future.result() for future in futures]

    def _run(
        self, audio: np.ndarray, options: dict[str, Any], tunables: WhisperTunables, call: int, channel: int
    ) -> ChannelResult:
        started = time.monotonic()
        try:
            # The batched pipeline needs VAD chunks (or clips) on audio longer than 30 s.
            if self.args.batch_size > 0 and tunables.vad_filter:
                engine = self._channel_engine(call, channel)
                return transcribe_channel(engine, audio, {**options, "batch_size": self.args.batch_size})
            return transcribe_channel(self._model, audio, options)
        finally:
            span = {"call": call, "channel": channel, "start": started, "end": time.monotonic()}
            self._channel_spans.append(span)

    def _channel_engine(self, call: int, channel: int) -> Any:
        """The batched engine of one channel: its chunks go to the replica's batch decoder."""
        assert self._batcher is not None
        return channel_engine(self._model, self._batcher, call, channel)

    def _warm_up(self) -> None:
        """Decode half a second of silence once, so the first request does not pay for the start-up and
        a broken model fails the replica at start."""
        silence = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
        options = {"language": "en", "beam_size": 1, "vad_filter": False, "max_new_tokens": 4}
        transcribe_channel(self._model, silence, options)


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Serve builder (``import_path: deployments.whisper:build_app``)."""
    options = WhisperArgs.model_validate(args or {})
    scaling: dict[str, Any] = (
        {"autoscaling_config": options.autoscaling_config}
        if options.autoscaling_config is not None
        else {"num_replicas": options.num_replicas or 1}
    )
    actor: dict[str, Any] = {"num_cpus": options.num_cpus, "num_gpus": options.num_gpus}
    if options.resources:
        actor["resources"] = options.resources
    deployment = serve.deployment(
        WhisperTranscriber,
        name=options.name,
        max_ongoing_requests=options.max_ongoing_requests,
        ray_actor_options=actor,
        **scaling,
    )
    return deployment.bind(options.model_dump())
