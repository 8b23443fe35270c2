"""The Ray sink: in a local Ray instance, the platform's metric calls come out of the node's metrics
export port under the names the dashboard (deploy/grafana/callcov.json) queries: ``ray_`` + the
name, ``_total`` on counters, with the platform's labels."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
import ray
from conftest import free_port

from callcov.kit import metrics
from callcov.kit.metrics import QueueSample
from deployments.metrics import RayMetrics


@pytest.fixture(scope="module")
def metrics_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    os.environ["RAY_metrics_report_interval_ms"] = "500"  # read by the processes ray.init starts
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        _metrics_export_port=port,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield port
    finally:
        ray.shutdown()
        os.environ.pop("RAY_metrics_report_interval_ms", None)


def scrape_until(port: int, *needles: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    body = ""
    while time.monotonic() < deadline:
        try:
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.TransportError:
            body = ""
        if all(needle in body for needle in needles):
            return body
        time.sleep(0.5)
    raise AssertionError(f"{needles} not exported; got {len(body)} characters")


def test_ray_sink_exports_the_dashboard_names(metrics_port: int) -> None:
    with metrics.installed(RayMetrics()):
        metrics.job_finished("analysis", "done", seconds=1.5, attempts=2)
        metrics.analysis_completed("degraded", 42.0)
        metrics.queue_sampled([QueueSample("webhook", "due", 7, 12.5)])
    body = scrape_until(
        metrics_port,
        "ray_callcov_jobs_finished_total{",
        "ray_callcov_job_duration_seconds_bucket{",
        "ray_callcov_job_attempts_bucket{",
        "ray_callcov_analyses_completed_total{",
        "ray_callcov_audio_seconds_total{",
        "ray_callcov_queue_depth{",
        "ray_callcov_queue_oldest_due_age_seconds{",
    )
    lines = [line for line in body.splitlines() if line.startswith("ray_callcov_")]
    finished = next(line for line in lines if line.startswith("ray_callcov_jobs_finished_total{"))
    assert 'kind="analysis"' in finished and 'outcome="done"' in finished and finished.endswith(" 1.0")
    depth = next(line for line in lines if line.startswith("ray_callcov_queue_depth{"))
    assert 'kind="webhook"' in depth and 'status="due"' in depth and depth.endswith(" 7.0")
    audio = next(line for line in lines if line.startswith("ray_callcov_audio_seconds_total{"))
    assert audio.endswith(" 42.0")
