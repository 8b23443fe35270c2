"""The ``llm`` application's args models and builders, without loading a model or vLLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from ray.serve import Application
from ray.serve.config import AutoscalingConfig

from deployments import llm
from deployments.llm import GPU_ONLY_BUILDERS, LlamaCppArgs, VLLMArgs, build_cpu_app

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def llm_app(config: str) -> dict[str, Any]:
    apps = yaml.safe_load((CONFIGS / config).read_text())["applications"]
    (app,) = [a for a in apps if a["name"] == "llm"]
    return app


def test_cpu_builder_builds_without_loading_the_model() -> None:
    assert isinstance(build_cpu_app({"num_replicas": 1, "num_cpus": 1}), Application)
    assert isinstance(build_cpu_app(None), Application)


@pytest.mark.parametrize(
    "args",
    [
        {"n_threads": 0},
        {"model": "some-hub/model"},
        {"max_ongoing_requests": 0},
        {"n_ctx": 16},
        {"unknown_option": 1},
    ],
)
def test_bad_cpu_args_are_refused(args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LlamaCppArgs.model_validate(args)


def test_cpu_args_accept_a_local_gguf() -> None:
    assert LlamaCppArgs(model="/models/other.Q4_K_M.gguf").model == "/models/other.Q4_K_M.gguf"


def test_vllm_args_make_an_llm_config() -> None:
    args = VLLMArgs(
        model_source="s3://callcov-models/qwen",
        accelerator_type="L40S",
        min_replicas=1,
        max_replicas=3,
        engine_kwargs={"enforce_eager": True},
    )
    config = args.llm_config()
    assert config["model_loading_config"] == {
        "model_id": "Qwen/Qwen2.5-7B-Instruct",
        "model_source": {"bucket_uri": "s3://callcov-models/qwen"},
    }
    assert config["engine_kwargs"]["enforce_eager"] is True
    assert config["engine_kwargs"]["tensor_parallel_size"] == 1
    scaling = config["deployment_config"]["autoscaling_config"]
    assert scaling == {
        "min_replicas": 1,
        "max_replicas": 3,
        "target_ongoing_requests": 48,
        "upscale_delay_s": 30,
        "downscale_delay_s": 600,
    }
    AutoscalingConfig.model_validate(scaling)  # what ray.serve.llm hands to Serve
    assert config["accelerator_type"] == "L40S"
    small = VLLMArgs(model_source="/m", max_ongoing_requests=8).llm_config()  # default: 3/4 of it
    assert small["deployment_config"]["autoscaling_config"]["target_ongoing_requests"] == 6
    assert config["runtime_env"]["env_vars"]["HF_HUB_OFFLINE"] == "1"
    local = VLLMArgs(model_source="/models/qwen").llm_config()
    assert local["model_loading_config"]["model_source"] == "/models/qwen"
    assert "accelerator_type" not in local


@pytest.mark.parametrize(
    "args",
    [
        {},  # model_source is required
        {"model_source": "Qwen/Qwen2.5-7B-Instruct"},  # a hub id
        {"model_source": "relative/path"},
        {"model_source": "/m", "accelerator_type": "GTX-9000"},
        {"model_source": "/m", "min_replicas": 3, "max_replicas": 2},
        {"model_source": "/m", "gpu_memory_utilization": 1.5},
        {"model_source": "/m", "tensor_parallel": 2},
        {"model_source": "/m", "max_ongoing_requests": 32, "target_ongoing_requests": 40},
        {"model_source": "/m", "target_ongoing_requests": 0},
        {"model_source": "/m", "max_ongoing_requests": 128, "engine_kwargs": {"max_num_seqs": 64}},
    ],
)
def test_bad_vllm_args_are_refused(args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        VLLMArgs.model_validate(args)


@pytest.mark.parametrize(
    ("config", "builder"),
    [("serve.local.yaml", "build_cpu_app"), ("serve.gpu.yaml", "build_gpu_app")],
)
def test_configs_llm_app_validates(config: str, builder: str) -> None:
    app = llm_app(config)
    assert app["route_prefix"] == "/llm"
    assert app["import_path"] == f"deployments.llm:{builder}"
    llm.ARGS_MODELS[builder].model_validate(app.get("args") or {})
    if builder not in GPU_ONLY_BUILDERS:
        assert isinstance(getattr(llm, builder)(app.get("args")), Application)


def test_gpu_llm_autoscales_within_one_vllm_batch() -> None:
    """The GPU app scales out before a replica's batch is full: ray.serve.llm's own default target
    would keep it at min_replicas (issue 10)."""
    args = VLLMArgs.model_validate(llm_app("serve.gpu.yaml")["args"])
    batch = args.engine_kwargs["max_num_seqs"]
    assert args.max_ongoing_requests == batch
    assert 0.5 * batch <= args.target_ongoing_requests <= 0.75 * batch
    scaling = args.llm_config()["deployment_config"]["autoscaling_config"]
    assert scaling["target_ongoing_requests"] == args.target_ongoing_requests == 48
