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
