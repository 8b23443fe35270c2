"""The metrics sink of a run without Ray: ``prometheus_client`` metrics in a registry of its own (one per
app, so apps built in one process never register a name twice), rendered by ``GET /metrics``."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from callcov.kit.metrics import METRICS, MetricSpec

CONTENT_TYPE = CONTENT_TYPE_LATEST


class PrometheusMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Any] = {spec.name: self._create(spec) for spec in METRICS}

    def _create(self, spec: MetricSpec) -> Any:
        common: dict[str, Any] = {"labelnames": spec.labels, "registry": self.registry}
        if spec.type == "counter":
            return Counter(spec.name, spec.description, **common)
        if spec.type == "gauge":
            return Gauge(spec.name, spec.description, **common)
        return Histogram(spec.name, spec.description, buckets=spec.buckets, **common)

    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        metric = self._metrics[spec.name]
        if labels:
            metric = metric.labels(**labels)
        if spec.type == "counter":
            metric.inc(value)
        elif spec.type == "gauge":
            metric.set(value)
        else:
            metric.observe(value)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return bytes(generate_latest(self.registry))
