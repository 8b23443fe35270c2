"""GPU smoke test: ``build_gpu_app`` (vLLM through ``ray.serve.llm``) answers one JSON-schema question.

Runs only on a GPU machine with ``ray[llm]``/vLLM installed (``pytest -m gpu tests/gpu``) and a small
HF-format chat model on local disk, e.g.
``CALLCOV_TEST_VLLM_MODEL=/models/Qwen2.5-0.5B-Instruct pytest -m gpu tests/gpu``. Nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port

from callcov.inference.openai_client import OpenAICompatibleClient
from callcov.inference.ports import ChatMessage

pytestmark = pytest.mark.gpu

MODEL_ENV = "CALLCOV_TEST_VLLM_MODEL"
MODEL_ID = "callcov-gpu-test"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "recording_disclosure": {"type": "boolean"},
        "agent_name": {"type": "string", "maxLength": 40},
    },
    "required": ["recording_disclosure", "agent_name"],
    "additionalProperties": False,
}
MESSAGES = [
    ChatMessage(role="system", content="You review call transcripts. Answer with JSON only."),
    ChatMessage(
        role="user",
        content=(
            "Transcript:\nAgent: Hello, this is John from Acme Bank; this call may be recorded.\n"
            "Customer: OK.\n\nDid the agent disclose the recording? What is the agent's name?"
        ),
    ),
]


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    """The GPU ``llm`` app deployed on a local Ray instance; yields its OpenAI base URL."""
    pytest.importorskip("vllm", reason="vLLM is not installed")
    pytest.importorskip("ray.serve.llm", reason="ray[llm] is not installed")
    model = os.environ.get(MODEL_ENV, "")
    if not model or not Path(model).is_dir():
        pytest.skip(f"set {MODEL_ENV} to a local HF-format chat model directory")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray
    from ray import serve

    from deployments.llm import build_gpu_app

    args = {
        "model_id": MODEL_ID,
        "model_source": str(Path(model).resolve()),
        "max_model_len": 2048,
        "gpu_memory_utilization": 0.5,
        "max_replicas": 1,
        "engine_kwargs": {"enforce_eager": True},
    }
    port = free_port()
    ray.init(address="local", include_dashboard=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_gpu_app(args), name="llm", route_prefix="/llm")
        yield f"http://127.0.0.1:{port}/llm/v1"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_vllm_answers_a_json_schema_question(llm_url: str) -> None:
    async def ask() -> tuple[list[str], dict[str, Any]]:
        async with OpenAICompatibleClient(llm_url, MODEL_ID, timeout_s=120) as client:
            return await client.list_models(), await client.chat_json(MESSAGES, SCHEMA, max_tokens=64)

    models, answer = asyncio.run(ask())
    assert MODEL_ID in models
    assert set(answer) == {"recording_disclosure", "agent_name"}
    assert isinstance(answer["recording_disclosure"], bool)
    assert isinstance(answer["agent_name"], str) and len(answer["agent_name"]) <= 40
