"""Operational metrics: the one list of what CallCov measures (``METRICS``), the port the platform
records through, and the process-wide sink it records into.

The platform calls the module functions (``job_finished``, ``analysis_completed``, ``queue_sampled``);
they go to the sink installed for the process (``install``): ``NullMetrics`` until something installs
one, ``callcov.kit.prometheus_metrics.PrometheusMetrics`` in a run without Ray (``GET /metrics``), and
``deployments.metrics.RayMetrics`` on a Serve replica (exported by Ray's metrics agent, every name
prefixed ``ray_``). Nothing here is created at import time, so apps and tests can build sinks freely.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

MetricType = Literal["counter", "gauge", "histogram"]

# Handler (stage) durations: from a quick webhook POST to a long transcription.
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)

# How a job run ended: the runner completed it (done), the handler settled it itself (settled), it was
# put back after a transient failure (retry), it failed for good (failed), or it ran out of attempts
# (gave_up).
OUTCOMES = ("done", "settled", "retry", "failed", "gave_up", "lost", "error")
# The states the queue sampler counts: claimable now (due: queued and due, or running with an expired
# lease), waiting for a later attempt (scheduled), and leased by a runner (running).
QUEUE_STATES = ("due", "scheduled", "running")


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as the code defines it; Prometheus adds `_total` to counters, Ray prefixes `ray_`
    type: MetricType
    description: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


JOB_DURATION = MetricSpec(
    "callcov_job_duration_seconds",
    "histogram",
    "Time a job run took in its kind's handler (each pipeline stage is a job kind), by how it ended.",
    ("kind", "outcome"),
    DURATION_BUCKETS_S,
)
JOBS_FINISHED = MetricSpec(
    "callcov_jobs_finished", "counter", "Job runs, by kind and outcome.", ("kind", "outcome")
)
JOB_ATTEMPTS = MetricSpec(
    "callcov_job_attempts",
    "histogram",
    "The attempt number of a job run when it ended, by kind and outcome.",
    ("kind", "outcome"),
    ATTEMPT_BUCKETS,
)
QUEUE_DEPTH = MetricSpec(
    "callcov_queue_depth",
    "gauge",
    "Unfinished jobs by kind and state (due, scheduled, running), from the dispatcher's sampler.",
    ("kind", "status"),
)
QUEUE_OLDEST_DUE_AGE = MetricSpec(
    "callcov_queue_oldest_due_age_seconds",
    "gauge",
    "How long the oldest due job of a kind has been waiting (0 when none is due).",
    ("kind",),
)
ANALYSES_COMPLETED = MetricSpec(
    "callcov_analyses_completed",
    "counter",
    "Completed analyses by how the LLM took part (evaluated, degraded, skipped, not_configured).",
    ("llm_status",),
)
AUDIO_SECONDS = MetricSpec("callcov_audio_seconds", "counter", "Seconds of audio in completed analyses.", ())

METRICS: tuple[MetricSpec, ...] = (
    JOB_DURATION,
    JOBS_FINISHED,
    JOB_ATTEMPTS,
    QUEUE_DEPTH,
    QUEUE_OLDEST_DUE_AGE,
    ANALYSES_COMPLETED,
    AUDIO_SECONDS,
)


@dataclass(frozen=True)
class QueueSample:
    kind: str
    status: str  # one of QUEUE_STATES
    depth: int
    oldest_due_age_s: float = 0.0  # only meaningful for status "due"


class MetricsSink(Protocol):
    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        """Add ``value`` to a counter, record it in a histogram, or set a gauge to it."""


class NullMetrics:
    """Records nothing (no sink installed)."""

    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        return None


_sink: MetricsSink = NullMetrics()


def install(sink: MetricsSink) -> MetricsSink:
    """Make ``sink`` the process' sink; returns the one it replaces."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def current() -> MetricsSink:
    return _sink


@contextmanager
def installed(sink: MetricsSink) -> Iterator[MetricsSink]:
    """``sink`` is the process' sink inside the block (tests)."""
    previous = install(sink)
    try:
        yield sink
    finally:
        install(previous)


def job_finished(kind: str, outcome: str, *, seconds: float, attempts: int) -> None:
    """A job run ended: its handler's duration, the outcome and the attempt it was."""
    labels = {"kind": kind, "outcome": outcome}
    _sink.observe(JOB_DURATION, seconds, labels)
    _sink.observe(JOBS_FINISHED, 1, labels)
    _sink.observe(JOB_ATTEMPTS, attempts, labels)


def analysis_completed(llm_status: str, audio_seconds: float) -> None:
    _sink.observe(ANALYSES_COMPLETED, 1, {"llm_status": llm_status})
    _sink.observe(AUDIO_SECONDS, max(audio_seconds, 0.0), {})


def queue_sampled(samples: Sequence[QueueSample], sink: MetricsSink | None = None) -> None:
    """Set the queue gauges from one sample of the jobs table (every kind and state it covers)."""
    target = sink or _sink
    for sample in samples:
        target.observe(QUEUE_DEPTH, sample.depth, {"kind": sample.kind, "status": sample.status})
        if sample.status == "due":
            target.observe(QUEUE_OLDEST_DUE_AGE, sample.oldest_due_age_s, {"kind": sample.kind})
