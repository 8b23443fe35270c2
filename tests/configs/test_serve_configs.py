"""Every Serve config validates against Ray's schema, and each app's args against its builder's model."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from ray.serve.schema import ServeDeploySchema

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("serve.*.yaml"))


def test_there_is_a_cpu_and_a_gpu_config() -> None:
    assert {p.name for p in CONFIGS} >= {"serve.local.yaml", "serve.gpu.yaml"}


@pytest.fixture
def cluster_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The builders read the settings: several API replicas need Redis (as on the cluster)."""
    from callcov.config import get_settings

    monkeypatch.setenv("CALLCOV_REDIS__URL", "redis://127.0.0.1:6379/0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid(path: Path, cluster_env: None) -> None:
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


def test_every_cluster_node_gets_the_internal_llm_key() -> None:
    """The proxies (one per node) check the /llm key and never see an app's runtime_env: the key must
    be in each node's environment (env file from the secret store; a Secret in KubeRay)."""
    root = Path(__file__).resolve().parents[2]
    cluster = yaml.safe_load((root / "ray-cluster.yaml").read_text())
    assert "--env-file /etc/callcov/node.env" in cluster["docker"]["run_options"]
    assert any("CALLCOV_INFERENCE__LLM_API_KEY" in c for c in cluster["initialization_commands"])
    assert any(
        "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=deployments.proxy:proxy_middlewares" in o
        for o in cluster["docker"]["run_options"]
    )
    manifest = (root / "deploy" / "kuberay" / "rayservice.yaml").read_text()
    assert manifest.count("RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH") >= 1 and "callcov-env" in manifest
