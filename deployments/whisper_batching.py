"""Cross-call batching for the transcription deployment: the speech chunks of every call (and channel) in
flight on a replica are decoded together, in batches of up to ``batch_size``.

How it fits faster-whisper: ``channel_engine`` is a stock ``BatchedInferencePipeline`` for one channel
of one call, whose ``transcribe`` still does the per-channel work (VAD, chunks, mel features, language
detection, the tokenizer and options, mapping times back through the VAD cuts). Only its last step,
``_batched_segments_generator``, is replaced: instead of decoding this channel's chunks by itself, it
hands them to the replica's ``ChunkBatcher`` and waits for their results, in chunk order.

``ChunkBatcher`` runs every decode in one thread of its own, so the replica's event loop and the
channels' threads are never blocked by the model. It takes the oldest waiting chunk's key (language,
task and decoding options: what one ``forward`` call needs equal), adds the next chunks with that key
in arrival order up to ``max_batch_size``, and waits at most ``wait_s`` after the oldest chunk arrived
for a batch to fill. Chunks of one channel therefore run in their order, batch after batch.

``decode_batch`` is faster-whisper's ``BatchedInferencePipeline.forward`` for a batch mixing calls: one
encoder pass and one ``generate`` for the whole batch, one word alignment for the whole batch, and then
faster-whisper's own word-timing rules (``WhisperModel.add_word_timestamps``) applied per channel, with
that channel's ``last_speech_timestamp`` carried from its previous chunk, as the per-call pipeline does.
So a call's transcript is the one the per-call pipeline gives (``tests/deployments/test_whisper_batching.py``).

Why not ``@serve.batch``: it batches calls of one async method, i.e. requests, while the unit here is a
chunk produced in a channel's thread; and one of its batches would still need splitting by key.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

# Batches kept for ``stats()["recent"]``.
RECENT_BATCHES = 256


@dataclass
class ChannelJob:
    """One channel of one call: what its chunks share, and the word-timing state carried between them."""

    call: int
    channel: int
    last_speech_timestamp: float = 0.0


@dataclass
class ChunkItem:
    key: Any
    job: ChannelJob
    index: int  # the chunk's position in its channel
    chunk: Any
    future: Future[Any] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class DecodeKey:
    """Chunks with equal ``identity`` can share one ``forward`` call."""

    identity: tuple[Any, ...]
    tokenizer: Any = field(compare=False)
    options: Any = field(compare=False)


Decode = Callable[[Any, list[ChunkItem]], Sequence[Any]]


class ChunkBatcher:
    """Queues chunks from any thread; one thread decodes them in batches (``decode(key, items)`` returns
    one result per item). ``submit`` returns one future per chunk."""

    def __init__(self, decode: Decode, max_batch_size: int, wait_s: float) -> None:
        self.decode = decode
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._queue: deque[ChunkItem] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._batches = 0
        self._chunks = 0
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_BATCHES)

    def submit(self, key: Any, *, call: int, channel: int, chunks: Sequence[Any]) -> list[Future[Any]]:
        job = ChannelJob(call, channel)
        items = [ChunkItem(key, job, index, chunk) for index, chunk in enumerate(chunks)]
        with self._cond:
            if self._closed:
                raise RuntimeError("the chunk batcher is closed")
            self._queue.extend(items)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="whisper-batcher", daemon=True)
                self._thread.start()
            self._cond.notify()
        return [item.future for item in items]

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "batch_size": self.max_batch_size,
                "batches": self._batches,
                "chunks": self._chunks,
                "queued": len(self._queue),
                "recent": list(self._recent),
            }

    def alive(self) -> bool:
        """False once the decoding thread has died (it never should) or the batcher was closed."""
        return not self._closed and (self._thread is None or self._thread.is_alive())

    def close(self) -> None:
        """Stop the decoding thread after its current batch; chunks still queued fail."""
        with self._cond:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for item in pending:
            item.future.set_exception(RuntimeError("the chunk batcher is closed"))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)  # a batch in progress finishes first

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            started = time.monotonic()
            try:
                results = self.decode(batch[0].key, batch)
            except BaseException as exc:  # a failed batch fails its chunks, never the thread
                for item in batch:
                    item.future.set_exception(exc)
                continue
            self._record(batch, time.monotonic() - started)
            for item, result in zip(batch, results, strict=True):
                item.future.set_result(result)

    def _next_batch(self) -> list[ChunkItem] | None:
        """The next batch: the oldest chunk and the following ones with its key, once the batch is full
        or the oldest chunk has waited ``wait_s``; None when closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._queue:
                    head = self._queue[0]
                    same = [item for item in self._queue if item.key == head.key][: self.max_batch_size]
                    left = head.queued_at + self.wait_s - time.monotonic()
                    if len(same) >= self.max_batch_size or left <= 0:
                        taken = {id(item) for item in same}
                        self._queue = deque(item for item in self._queue if id(item) not in taken)
                        return same
                    self._cond.wait(left)
                else:
                    self._cond.wait()

    def _record(self, batch: list[ChunkItem], seconds: float) -> None:
        with self._cond:
            self._batches += 1
            self._chunks += len(batch)
            self._recent.append(
                {
                    "chunks": len(batch),
                    "calls": len({item.job.call for item in batch}),
                    "channels": len({id(item.job) for item in batch}),
                    "seconds": round(seconds, 3),
                }
            )


def decode_key(tokenizer: Any, options: Any) -> DecodeKey:
    """What must be equal for one ``forward``: the tokenizer's language and task, and the options (less
    ``clip_timestamps``, the channel's VAD cuts, which the batched decode does not read)."""
    identity = (tokenizer.language_code, tokenizer.task, repr(replace(options, clip_timestamps=None)))
    return DecodeKey(identity, tokenizer, options)


def channel_engine(model: Any, batcher: ChunkBatcher, call: int, channel: int) -> Any:
    """A ``BatchedInferencePipeline`` for one channel whose chunks are decoded by ``batcher``."""
    from faster_whisper import BatchedInferencePipeline

    engine = BatchedInferencePipeline(model)

    def segments(
        features: Any,
        tokenizer: Any,
        chunks_metadata: list[dict[str, Any]],
        _batch_size: int,  # the batcher's max_batch_size applies
        options: Any,
        *_: Any,
    ) -> Iterator[Any]:
        if len(features) == 0:
            return
        chunks = list(zip(features, chunks_metadata, strict=True))
        futures = batcher.submit(decode_key(tokenizer, options), call=call, channel=channel, chunks=chunks)
        count = 0
        for future in futures:
            for segment in future.result():
                count += 1
                yield _segment(segment, count, options)

    engine._batched_segments_generator = segments  # the one step that differs from the stock pipeline
    return engine


def _segment(segment: dict[str, Any], index: int, options: Any) -> Any:
    """A faster-whisper ``Segment``, built as ``_batched_segments_generator`` builds it."""
    from faster_whisper.transcribe import Segment, Word

    return Segment(
        seek=segment["seek"],
        id=index,
        text=segment["text"],
        start=round(segment["start"], 3),
        end=round(segment["end"], 3),
        words=None if not options.word_timestamps else [Word(**word) for word in segment["words"]],
        tokens=segment["tokens"],
        avg_logprob=segment["avg_logprob"],
        no_speech_prob=segment["no_speech_prob"],
        compression_ratio=segment["compression_ratio"],
        temperature=options.temperatures[0],
    )


def decode_batch(model: Any, key: DecodeKey, items: list[ChunkItem]) -> list[list[dict[str, Any]]]:
    """``BatchedInferencePipeline.forward`` for chunks of several channels: each item's ``chunk`` is
    (mel features, chunk metadata); returns each chunk's segments (dicts, with words when asked)."""
    from faster_whisper import BatchedInferencePipeline
    from faster_whisper.transcribe import get_compression_ratio

    tokenizer, options = key.tokenizer, key.options
    features = np.stack([item.chunk[0] for item in items])
    pipeline = BatchedInferencePipeline(model)
    encoder_output, outputs = pipeline.generate_segment_batched(features, tokenizer, options)
    segmented, sizes = [], []
    for item, output in zip(items, outputs, strict=True):
        metadata = item.chunk[1]
        size = int(np.ceil(metadata["duration"]) * model.frames_per_second)
        subsegments, _, _ = model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=output["tokens"],
            time_offset=metadata["offset"],
            segment_size=size,
            segment_duration=metadata["duration"],
            seek=0,
        )
        seek = int(metadata["offset"] * model.frames_per_second)
        texts = [tokenizer.decode(sub["tokens"]) for sub in subsegments]
        segmented.append(
            [
                {
                    "text": text,
                    "avg_logprob": output["avg_logprob"],
                    "no_speech_prob": output["no_speech_prob"],
                    "tokens": sub["tokens"],
                    "start": sub["start"],
                    "end": sub["end"],
                    "compression_ratio": get_compression_ratio(text),
                    "seek": seek,
                }
                for sub, text in zip(subsegments, texts, strict=True)
            ]
        )
        sizes.append(size)
    if options.word_timestamps:
        _add_words(model, tokenizer, options, encoder_output, items, segmented, sizes)
    return segmented


def _add_words(
    model: Any,
    tokenizer: Any,
    options: Any,
    encoder_output: Any,
    items: list[ChunkItem],
    segmented: list[list[dict[str, Any]]],
    sizes: list[int],
) -> None:
    """Word timings: one alignment for the batch, then faster-whisper's rules per channel (they read the
    end of the channel's previous speech, so each channel's chunks go through them in order)."""
    text_tokens = [[t for sub in chunk for t in sub["tokens"] if t < tokenizer.eot] for chunk in segmented]
    alignments = model.find_alignment(tokenizer, text_tokens, encoder_output, sizes)
    by_job: dict[int, list[int]] = {}
    for position, item in enumerate(items):
        by_job.setdefault(id(item.job), []).append(position)
    for positions in by_job.values():
        job = items[positions[0]].job
        aligned = _Aligned(model.frames_per_second, [alignments[p] for p in positions])
        job.last_speech_timestamp = type(model).add_word_timestamps(
            aligned,
            [segmented[p] for p in positions],
            tokenizer,
            encoder_output,
            [sizes[p] for p in positions],
            options.prepend_punctuations,
            options.append_punctuations,
            job.last_speech_timestamp,
        )


@dataclass
class _Aligned:
    """Stands in for the ``WhisperModel`` inside ``add_word_timestamps``, which reads only these two:
    its alignments were computed for the whole batch, and this hands it one channel's share."""

    frames_per_second: float
    alignments: list[Any]

    def find_alignment(self, *_: Any, **__: Any) -> list[Any]:
        return self.alignments
