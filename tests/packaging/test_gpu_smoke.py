"""scripts/gpu-smoke.sh can only run on a GPU machine; what it deploys is checked here: the one-GPU
overrides of configs/serve.gpu.yaml validate like the config itself (Ray's schema, each app's args,
the CPU builders built), and the model name is the same everywhere the config names it."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
from pathlib import Path

import pytest
from ray.serve.schema import ServeDeploySchema

from callcov.config import get_settings

ROOT = Path(__file__).resolve().parents[2]


def load_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "scripts" / "gpu_smoke.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_gpu_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLCOV_REDIS__URL", raising=False)  # one API replica needs no Redis
    get_settings.cache_clear()
    config = load_script().one_gpu_config(
        ROOT / "configs" / "serve.gpu.yaml", tmp_path / "whisper", tmp_path / "llm", "smoke-model", 8123
    )
    schema = ServeDeploySchema.model_validate(config)
    assert schema.http_options.host == "127.0.0.1" and schema.http_options.port == 8123
    apps = {app.name: app for app in schema.applications}
    assert apps["llm"].args["model_id"] == "smoke-model"
    assert apps["llm"].args["model_source"] == str(tmp_path / "llm")
    for name in ("api", "dispatcher"):
        assert apps[name].args.get("llm_model", "smoke-model") == "smoke-model"
    assert apps["whisper"].args["num_gpus"] == 0 and "resources" not in apps["whisper"].args
    for app in schema.applications:
        module_name, attr = app.import_path.split(":")
        module = importlib.import_module(module_name)
        getattr(module, "ARGS_MODELS", {}).get(attr, module.ARGS_MODEL).model_validate(app.args or {})
        if attr not in getattr(module, "GPU_ONLY_BUILDERS", ()) and app.name != "whisper":
            getattr(module, attr)(app.args)  # whisper would load its (absent) model only in a replica
    get_settings.cache_clear()


def test_scripts_parse() -> None:
    for script in ("gpu-smoke.sh", "docker-smoke.sh", "lock.sh"):
        done = subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
