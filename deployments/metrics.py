"""The metrics sink of a Serve replica: ``ray.util.metrics`` for every ``callcov.kit.metrics.METRICS``
entry, exported by the node's Ray metrics agent (its metrics export port) as ``ray_<name>``, counters
with ``_total``, with Ray's own labels (``WorkerId``, ``NodeAddress``, ``SessionName``, …) added.
Installed by the dispatcher and the ingress when their replica starts (``install_ray_metrics``)."""

from __future__ import annotations

from typing import Any

from ray.util.metrics import Counter, Gauge, Histogram

from callcov.kit import metrics
from callcov.kit.metrics import METRICS, MetricSpec


class RayMetrics:
    def __init__(self) -> None:
        self._metrics: dict[str, Any] = {spec.name: self._create(spec) for spec in METRICS}

    @staticmethod
    def _create(spec: MetricSpec) -> Any:
        if spec.type == "counter":
            return Counter(spec.name, spec.description, tag_keys=spec.labels)
        if spec.type == "gauge":
            return Gauge(spec.name, spec.description, tag_keys=spec.labels)
        return Histogram(spec.name, spec.description, boundaries=list(spec.buckets), tag_keys=spec.labels)

    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        metric = self._metrics[spec.name]
        tags = labels or None
        if spec.type == "counter":
            metric.inc(value, tags=tags)
        elif spec.type == "gauge":
            metric.set(value, tags=tags)
        else:
            metric.observe(value, tags=tags)


def install_ray_metrics() -> RayMetrics:
    """Make Ray's metrics this replica's sink (call inside a Ray worker: a replica's constructor)."""
    sink = RayMetrics()
    metrics.install(sink)
    return sink
