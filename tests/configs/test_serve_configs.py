"""Every Serve config validates against Ray's schema, and each app's args against its builder's model."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from ray.serve.schema import ServeDeploySchema

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("serve.*.yaml"))


def test_there_is_a_cpu_and_a_gpu_config() -> None:
    assert {p.name for p in CONFIGS} >= {"serve.local.yaml", "serve.gpu.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid(path: Path) -> None:
    schema = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    for app in schema.applications:
        module_name, attr = app.import_path.split(":")
        module = importlib.import_module(module_name)
        builder = getattr(module, attr)
        model = getattr(module, "ARGS_MODELS", {}).get(attr, module.ARGS_MODEL)
        assert issubclass(model, BaseModel)
        model.model_validate(app.args or {})
        if attr in getattr(module, "GPU_ONLY_BUILDERS", ()):
            continue  # needs ray[llm] and vLLM: built by tests/gpu/test_vllm_gpu.py on a GPU machine
        builder(app.args)  # builds the Application graph without deploying it


def test_bad_args_are_refused() -> None:
    from deployments.ingress import IngressArgs

    with pytest.raises(ValueError):
        IngressArgs.model_validate({"max_ongoing_requests": 0})


def served_model(app: dict) -> str:
    """The model id the ``llm`` app serves: ``model_name`` (llama.cpp) or ``model_id`` (vLLM)."""
    args = app.get("args") or {}
    return str(args.get("model_name") or args["model_id"])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_model_name_comes_from_the_config_that_deploys_it(path: Path) -> None:
    """The dispatcher asks for, and the api's /health checks, the very model the ``llm`` app serves
    (one YAML anchor in the file), never a default that happens to differ."""
    apps = {app["name"]: app for app in yaml.safe_load(path.read_text())["applications"]}
    model = served_model(apps["llm"])
    assert apps["dispatcher"]["args"]["llm_model"] == model
    assert apps["api"]["args"]["llm_model"] == model
    assert f"&{'llm_model'}" in path.read_text(), "share the name with a YAML anchor, not a copy"


@pytest.mark.parametrize("builder", ["deployments.ingress", "deployments.dispatcher"])
def test_the_builders_hand_the_model_name_to_their_replicas(builder: str) -> None:
    module = importlib.import_module(builder)
    app = module.build_app({"llm_model": "Qwen/Qwen2.5-7B-Instruct"})
    env = app._bound_deployment.ray_actor_options["runtime_env"]["env_vars"]
    assert env["CALLCOV_INFERENCE__LLM_MODEL"] == "Qwen/Qwen2.5-7B-Instruct"
    assert env["CALLCOV_INFERENCE__CHECK_LLM"] == "true"
