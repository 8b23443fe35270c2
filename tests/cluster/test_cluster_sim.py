"""The scale-out proof, short: scripts/cluster_sim.py with 18 calls instead of 56 (6 on one model node of
each kind, 8 on two, 4 while a gpu_whisper node is killed). A multi-node Ray cluster with Ray's fake
autoscaler and ray-cluster.yaml's node types, configs/serve.sim.yaml deployed with deployments.deploy,
model STAND-INS (deployments/simulated.py), real PostgreSQL and Redis, moto's S3 server for the audio,
calls and webhooks over HTTP.

Asserted here: GPU nodes were added while calls waited and removed after the idle timeout; every call
completed once, with one usage record, one webhook event and one delivered event id; the killed node's
work ran again. Not asserted at this size: the throughput ratio (too few calls for a steady window;
the full run asserts it, docs/scaling.md)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def load_simulation():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("cluster_sim", ROOT / "scripts" / "cluster_sim.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_run_on_the_simulated_cluster() -> None:
    sim = load_simulation()
    started = time.monotonic()
    run = sim.simulate((6, 8, 4))
    figures = sim.figures(run)
    print(f"cluster simulation: {time.monotonic() - started:.0f} s; {figures}")
    assert sim.check(run, min_ratio=None) == []
    assert figures["max_nodes"]["gpu_whisper"] == 2
    assert run.killed and run.killed["pids"] > 0
