"""The GPU cluster's Serve config (``configs/serve.gpu.yaml``), deployed for real with CPU stand-ins for
its two models: llama.cpp serves the GPU model's name in place of vLLM, Whisper base on the CPU in
place of large-v3-turbo on CUDA. Everything else is the GPU file as written: the model-name anchor,
the api's autoscaling (which needs Redis), the proxies' guard of /llm. It proves that the dispatcher
reaches the LLM under the configured name, that a model name the LLM does not serve fails at start-up,
and that /llm refuses a caller without the internal key."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import callcov_serve, free_port, make_settings, server_env
from speech import synthesize_call
from test_serve_e2e import (  # noqa: F401 - api_key and receiver are fixtures
    COMPLIANT_CALL,
    api_key,
    receiver,
    submit,
    wait_finished,
)

from callcov.inference.llm_check import LLMNotServed
from deployments.dispatcher import Dispatcher

pytestmark = pytest.mark.serve
ROOT = Path(__file__).resolve().parents[2]
GPU_CONFIG = ROOT / "configs" / "serve.gpu.yaml"
KEY = secrets.token_urlsafe(24)


def cpu_stand_ins(config: dict[str, Any]) -> dict[str, Any]:
    """The GPU config with each model app swapped for its CPU stand-in, sized for 2 cores."""
    config = copy.deepcopy(config)
    # Loopback: the tests' development secrets are refused on any other address (issue 12).
    config["http_options"]["host"] = "127.0.0.1"
    apps = {app["name"]: app for app in config["applications"]}
    model = apps["llm"]["args"]["model_id"]
    apps["llm"]["import_path"] = "deployments.llm:build_cpu_app"
    apps["llm"]["args"] = {
        "model": "qwen2.5-coder-0.5b",
        "model_name": model,
        "n_ctx": 8192,
        "n_threads": 2,
        "num_cpus": 0.25,
    }
    whisper = apps["whisper"]["args"]
    for gpu_only in ("num_gpus", "resources"):
        whisper.pop(gpu_only, None)
    whisper.update(
        model="base", device="cpu", compute_type="int8", cpu_threads=2, batch_size=0, num_cpus=0.25
    )
    whisper["autoscaling_config"] |= {"min_replicas": 1, "max_replicas": 1}
    apps["api"]["args"]["autoscaling_config"] |= {"min_replicas": 1, "max_replicas": 2}
    apps["api"]["args"]["num_cpus"] = 0.25
    apps["dispatcher"]["args"] |= {"num_replicas": 1, "num_cpus": 0.25}
    return config


@pytest.fixture(scope="module")
def service(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], int, Path]:
    folder = tmp_path_factory.mktemp("gpu-shaped")
    env = server_env(
        pg_url,
        CALLCOV_DATA_DIR=str(folder),
        CALLCOV_WORKER__POLL_INTERVAL_S="1",
        CALLCOV_INFERENCE__LLM_API_KEY=KEY,
    )
    return env, free_port(), folder


@pytest.fixture(scope="module")
def served(service: tuple[dict[str, str], int, Path]) -> Iterator[str]:
    env, port, folder = service
    config = folder / "serve.gpu-shaped.yaml"
    config.write_text(yaml.safe_dump(cpu_stand_ins(yaml.safe_load(GPU_CONFIG.read_text()))))
    with callcov_serve(env, port, folder / "serve.log", config=config, timeout_s=300) as (url, _):
        yield url


def gpu_model() -> str:
    apps = {app["name"]: app for app in yaml.safe_load(GPU_CONFIG.read_text())["applications"]}
    return str(apps["llm"]["args"]["model_id"])


def test_the_llm_route_needs_the_internal_key(served: str) -> None:
    assert httpx.get(f"{served}/llm/v1/models", timeout=10).status_code == 404
    wrong = httpx.get(f"{served}/llm/v1/models", headers={"Authorization": "Bearer sk_test_x"}, timeout=10)
    assert wrong.status_code == 404
    right = httpx.get(f"{served}/llm/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert right.status_code == 200 and [m["id"] for m in right.json()["data"]] == [gpu_model()]
    health = httpx.get(f"{served}/health", timeout=10)
    assert health.json() == {"status": "ok", "checks": {"database": "ok", "llm": "ok"}}


def test_the_dispatcher_reaches_the_llm_under_the_configured_name(
    served: str,
    api_key: dict[str, str],  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    call = synthesize_call(COMPLIANT_CALL[:3], tmp_path / "call.wav", stereo=True)
    analysis_id = submit(served, api_key, call.path)
    body = wait_finished(served, api_key, [analysis_id], timeout_s=300)[analysis_id]
    assert body["status"] == "completed", body["metadata"]
    evaluation = body["results"]["evaluation"]
    assert evaluation["model"] == gpu_model() and evaluation["attempts"] >= 1, evaluation
    assert evaluation["llm"] == "evaluated" or evaluation["reason"], evaluation


@pytest.mark.asyncio
async def test_a_model_the_llm_does_not_serve_fails_at_start_up(
    served: str, service: tuple[dict[str, str], int, Path], pg_url: str
) -> None:
    """The dispatcher replica's constructor, against the deployed stand-in: Serve reports the error
    and never starts a replica that would score on rules alone."""
    settings = make_settings(
        pg_url,
        service[2],
        inference={
            "llm_base_url": f"{served}/llm/v1",
            "llm_model": "Qwen/Qwen2.5-0.5B-Instruct",
            "llm_api_key": KEY,
            "check_llm": True,
            "llm_startup_timeout_s": 60,
        },
    )
    dispatcher = Dispatcher.__new__(Dispatcher)
    with pytest.raises(LLMNotServed, match=r"'Qwen/Qwen2.5-0.5B-Instruct' is not served.*Qwen2.5-7B"):
        await dispatcher.__init__(settings)  # type: ignore[misc]
    assert not hasattr(dispatcher, "runners"), "no job may be claimed"
