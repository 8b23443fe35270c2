"""The dispatcher's slots per analysis stage follow the model deployments' capacity (most replicas x
max_ongoing_requests), on every launch path, so that a backlog reaches Serve's autoscaler."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.capacity import CapacityError, apply_slots, stage_slots
from deployments.dispatcher import DispatcherArgs, build_app
from deployments.run import prepare_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / name).read_text())


def apps(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {app["name"]: app for app in config["applications"]}


def test_local_slots_are_the_cpu_models_capacity() -> None:
    config = load("serve.local.yaml")
    whisper, llm = apps(config)["whisper"]["args"], apps(config)["llm"]["args"]
    assert stage_slots(config) == {
        "transcription_slots": whisper["max_ongoing_requests"] * whisper["num_replicas"],
        "scoring_slots": llm["max_ongoing_requests"] * llm["num_replicas"],
    }


def test_gpu_slots_cover_every_replica_the_autoscaler_may_add_shared_by_the_dispatchers() -> None:
    config = load("serve.gpu.yaml")
    whisper, llm = apps(config)["whisper"]["args"], apps(config)["llm"]["args"]
    dispatchers = apps(config)["dispatcher"]["args"]["num_replicas"]
    slots = stage_slots(config)
    whisper_capacity = whisper["max_ongoing_requests"] * whisper["autoscaling_config"]["max_replicas"]
    assert slots["transcription_slots"] * dispatchers >= whisper_capacity
    assert slots["scoring_slots"] * dispatchers >= llm["max_ongoing_requests"] * llm["max_replicas"]
    # More than the old fixed 2 per replica: a backlog now queues at the handles, where Serve sees it.
    assert min(slots.values()) > 2


def test_apply_slots_fills_the_dispatcher_args_and_keeps_explicit_ones() -> None:
    config = load("serve.gpu.yaml")
    source = copy.deepcopy(config)
    applied = apply_slots(config)
    assert config == source
    assert {k: apps(applied)["dispatcher"]["args"][k] for k in stage_slots(config)} == stage_slots(config)
    apps(config)["dispatcher"]["args"]["scoring_slots"] = 5
    assert apps(apply_slots(config))["dispatcher"]["args"]["scoring_slots"] == 5


def test_whisper_may_scale_to_zero_only_with_its_cold_start_declared() -> None:
    config = load("serve.gpu.yaml")
    whisper = apps(config)["whisper"]["args"]
    whisper["autoscaling_config"]["min_replicas"] = 0
    whisper.pop("cold_start_s", None)
    with pytest.raises(CapacityError, match="cold_start_s"):
        apply_slots(config)
    whisper["cold_start_s"] = 100_000  # longer than the dispatcher waits for a transcription
    with pytest.raises(CapacityError, match="cold start"):
        apply_slots(config)


def test_callcov_serve_runs_the_config_with_the_slots(tmp_path: Path) -> None:
    path = CONFIGS / "serve.local.yaml"
    to_run, port = prepare_config(path, load("serve.local.yaml"), None, None)
    assert port == 8000 and to_run != path
    ran = yaml.safe_load(to_run.read_text())
    assert {k: apps(ran)["dispatcher"]["args"][k] for k in stage_slots(ran)} == stage_slots(
        load("serve.local.yaml")
    )


def test_the_dispatcher_replicas_get_their_slots_as_worker_settings() -> None:
    app = build_app({"transcription_slots": 8, "scoring_slots": 64})
    env = app._bound_deployment.ray_actor_options["runtime_env"]["env_vars"]
    assert env["CALLCOV_WORKER__TRANSCRIPTION_CONCURRENCY"] == "8"
    assert env["CALLCOV_WORKER__SCORING_CONCURRENCY"] == "64"
    assert (
        DispatcherArgs().graceful_stop_s
        < app._bound_deployment._deployment_config.graceful_shutdown_timeout_s
    )
