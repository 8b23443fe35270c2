"""The CPU LLM endpoint with the real packaged Qwen 0.5B GGUF, driven by ``OpenAICompatibleClient``.

The server class is built directly (no Ray) and served by uvicorn on a loopback port; one test runs the
same class through Ray Serve. Assertions check structure and plumbing, never the model's judgement.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import asgi_in_thread, free_port
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from callcov.inference.openai_client import OpenAICompatibleClient
from callcov.inference.ports import (
    ChatMessage,
    InferenceError,
    LLMOutputInvalid,
    LLMRequestRejected,
    LLMUnavailable,
)
from deployments.llm import build_cpu_app
from deployments.llm_cpu import LlamaCppServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL = "callcov-cpu-llm"
SCHEMA: dict[str, Any] = {
    "title": "disclosure_check",
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
            "Transcript:\nAgent: Good morning, this is John from Acme Bank. This call may be recorded "
            "for quality and training purposes.\nCustomer: Fine.\n\n"
            "Did the agent disclose the recording? What is the agent's name?"
        ),
    ),
]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LlamaCppServer]:
    started = time.perf_counter()
    server = LlamaCppServer({"n_threads": 2, "n_ctx": 2048})
    print(f"\nmodel ready in {time.perf_counter() - started:.2f} s (load {server.load_seconds:.2f} s)")
    yield server
    server.close()


@pytest.fixture(scope="module")
def base_url(llm_server: LlamaCppServer) -> Iterator[str]:
    """``llm_server``'s FastAPI app on a real loopback port (uvicorn in a background thread)."""
    with asgi_in_thread(llm_server.build_asgi_app()) as url:
        yield url


@pytest_asyncio.fixture
async def client(base_url: str) -> AsyncIterator[OpenAICompatibleClient]:
    async with OpenAICompatibleClient(f"{base_url}/v1", MODEL, timeout_s=60) as c:
        yield c


def check_answer(answer: dict[str, Any]) -> None:
    assert set(answer) == {"recording_disclosure", "agent_name"}
    assert isinstance(answer["recording_disclosure"], bool)
    assert isinstance(answer["agent_name"], str) and len(answer["agent_name"]) <= 40


@pytest.mark.asyncio
async def test_schema_constrained_answer_over_http(client: OpenAICompatibleClient) -> None:
    started = time.perf_counter()
    answer = await client.chat_json(MESSAGES, SCHEMA, max_tokens=64)
    print(f"\nschema answer in {time.perf_counter() - started:.2f} s: {answer}")
    check_answer(answer)


@pytest.mark.asyncio
async def test_models_are_listed(client: OpenAICompatibleClient, base_url: str) -> None:
    assert await client.list_models() == [MODEL]
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{base_url}/v1/models")).json()
    assert body["object"] == "list"
    assert body["data"][0]["object"] == "model"


@pytest.mark.asyncio
async def test_loop_stays_free_while_generating(client: OpenAICompatibleClient, base_url: str) -> None:
    """While llama.cpp generates (48 tokens, eos ignored), the server's event loop still answers."""
    long_answer = {
        "messages": [{"role": "user", "content": "Count slowly from one to one hundred, in words."}],
        "max_tokens": 48,
        "ignore_eos": True,
    }
    async with httpx.AsyncClient(timeout=60) as http:
        answering = asyncio.create_task(http.post(f"{base_url}/v1/chat/completions", json=long_answer))
        await asyncio.sleep(0.05)
        assert await asyncio.wait_for(client.list_models(), timeout=2) == [MODEL]
        assert not answering.done()
        response = await answering
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 48


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        (b"{not json", 400, "invalid_request_error"),
        (b'["a list"]', 400, "invalid_request_error"),
        (b'{"messages": "not a list"}', 400, "invalid_request_error"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}', 400, None),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}', 400, None),
        (b'{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}', 404, None),
    ],
    ids=["not-json", "not-object", "bad-messages", "bad-max-tokens", "stream", "unknown-model"],
)
def test_malformed_requests_get_openai_errors(
    base_url: str, body: bytes, status: int, error_type: str | None
) -> None:
    response = httpx.post(
        f"{base_url}/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    if error_type:
        assert error["type"] == error_type


def test_prompt_over_the_context_is_a_400(base_url: str) -> None:
    long = {"messages": [{"role": "user", "content": "word " * 4000}], "max_tokens": 4}
    response = httpx.post(f"{base_url}/v1/chat/completions", json=long)
    assert response.status_code == 400
    assert "context" in response.json()["error"]["message"]


def test_unknown_route_is_an_openai_404(base_url: str) -> None:
    response = httpx.get(f"{base_url}/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["message"]


@pytest.mark.asyncio
async def test_wrong_model_name_is_unavailable_not_a_refusal(base_url: str) -> None:
    """A model the endpoint does not serve is a deployment fault: the job is retried (and the
    dispatcher's start-up check fails), never scored on rules alone as if the LLM had refused."""
    async with OpenAICompatibleClient(f"{base_url}/v1", "no-such-model") as c:
        with pytest.raises(LLMUnavailable) as caught:
            await c.chat_json(MESSAGES, SCHEMA, max_tokens=8)
    assert caught.value.status_code == 404 and isinstance(caught.value, InferenceError)


@pytest.mark.asyncio
async def test_dead_port_is_an_inference_error() -> None:
    async with OpenAICompatibleClient(f"http://127.0.0.1:{free_port()}/v1", MODEL, timeout_s=5) as c:
        with pytest.raises(InferenceError):
            await c.chat_json(MESSAGES, SCHEMA)
        with pytest.raises(InferenceError):
            await c.list_models()


def completion(content: str | None, finish_reason: str = "stop") -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }


def fake_endpoint(status: int, body: dict[str, Any] | str) -> FastAPI:
    """An OpenAI-compatible impostor that answers every chat request with ``body``."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat() -> Any:
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)

    return app


async def ask_fake(status: int, body: dict[str, Any] | str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=fake_endpoint(status, body))
    async with httpx.AsyncClient(transport=transport) as http:
        client = OpenAICompatibleClient("http://fake.test/v1", MODEL, http=http)
        return await client.chat_json(MESSAGES, SCHEMA)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "finish_reason", "reason"),
    [
        ("Sure! The agent, John, disclosed the recording.", "stop", "not JSON"),
        ('{"recording_disclosure": true, "agent_na', "length", "max_tokens"),
        ('{"recording_disclosure": "yes", "agent_name": "John"}', "stop", "recording_disclosure"),
        ('{"recording_disclosure": true}', "stop", "agent_name"),
        ("[true, 1]", "stop", "schema"),
        (None, "stop", "empty"),
    ],
    ids=["prose", "truncated", "wrong-type", "missing-key", "not-object", "no-content"],
)
async def test_invalid_answers_are_llm_output_invalid(
    content: str | None, finish_reason: str, reason: str
) -> None:
    with pytest.raises(LLMOutputInvalid, match=reason):
        await ask_fake(200, completion(content, finish_reason))


@pytest.mark.asyncio
async def test_valid_answer_from_fake_endpoint_parses() -> None:
    answer = await ask_fake(200, completion('{"recording_disclosure": false, "agent_name": ""}'))
    assert answer == {"recording_disclosure": False, "agent_name": ""}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, {"error": {"message": "overloaded", "type": "server_error"}}, InferenceError),
        (500, "Internal Server Error", InferenceError),
        (429, {"error": {"message": "slow down"}}, InferenceError),
        (408, {"message": "timeout"}, InferenceError),
        (401, {"error": {"message": "bad key", "type": "invalid_request_error"}}, LLMUnavailable),
        (403, {"error": {"message": "forbidden"}}, LLMUnavailable),
        (404, {"error": {"message": "The model `x` does not exist."}}, LLMUnavailable),
        (400, {"object": "error", "message": "bad schema", "type": "BadRequestError"}, LLMRequestRejected),
        (200, "<html>a web page</html>", LLMRequestRejected),
        (200, {"id": "x", "object": "chat.completion"}, LLMRequestRejected),
    ],
    ids=["503", "500-text", "429", "408", "401", "403", "404", "400-vllm", "200-html", "200-no-choices"],
)
async def test_http_failures_are_classified(status: int, body: dict[str, Any] | str, error: type) -> None:
    with pytest.raises(error) as caught:
        await ask_fake(status, body)
    if isinstance(caught.value, (LLMRequestRejected, LLMUnavailable)):
        assert caught.value.status_code == status
    else:
        assert f"HTTP {status}" in str(caught.value)


class FakeEngine:
    """Stands in for ``xllamacpp.Server``: answers every request with ``reply`` (or raises it)."""

    def __init__(self, reply: dict[str, Any] | Exception) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []

    def handle_chat_completions(self, prompt: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(prompt)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (
            {"error": {"code": 503, "message": "loading model", "type": "unavailable_error"}},
            503,
            InferenceError,
        ),
        ({"code": 500, "type": "server_error", "message": "bad json from llama.cpp"}, 500, InferenceError),
        (RuntimeError("llama_decode failed"), 500, InferenceError),
        (ValueError("'messages' is required"), 400, LLMRequestRejected),
        (
            {"error": {"code": 400, "message": "bad grammar", "type": "invalid_request_error"}},
            400,
            LLMRequestRejected,
        ),
    ],
    ids=["503", "bare-500", "raises", "value-error", "400"],
)
async def test_engine_errors_map_to_status_codes(
    reply: dict[str, Any] | Exception, status: int, error: type
) -> None:
    server = LlamaCppServer(engine=FakeEngine(reply))
    transport = httpx.ASGITransport(app=server.build_asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://llm.test") as http:
        response = await http.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert response.status_code == status
        assert response.json()["error"]["message"]
        with pytest.raises(error):
            await OpenAICompatibleClient("http://llm.test/v1", MODEL, http=http).chat_json(MESSAGES, SCHEMA)
    server.close()


@pytest.mark.asyncio
async def test_server_pins_the_served_model_name() -> None:
    engine = FakeEngine(completion('{"recording_disclosure": true, "agent_name": "A"}'))
    server = LlamaCppServer(engine=engine)
    transport = httpx.ASGITransport(app=server.build_asgi_app())
    async with httpx.AsyncClient(transport=transport) as http:
        client = OpenAICompatibleClient("http://llm.test/v1", MODEL, http=http)
        assert await client.chat_json(MESSAGES, SCHEMA, max_tokens=32) == {
            "recording_disclosure": True,
            "agent_name": "A",
        }
    (sent,) = engine.requests
    assert sent["model"] == MODEL and sent["max_tokens"] == 32 and sent["temperature"] == 0
    assert sent["response_format"]["json_schema"] == {
        "name": "disclosure_check",
        "schema": SCHEMA,
        "strict": True,
    }
    server.close()


@pytest.mark.serve
def test_cpu_app_answers_through_ray_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_cpu_app`` runs ``LlamaCppServer`` as a late-bound Serve ingress under ``/llm``."""
    import ray
    from ray import serve

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = free_port()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_cpu_app({"num_cpus": 1, "n_ctx": 2048}), name="llm", route_prefix="/llm")

        async def ask() -> tuple[list[str], dict[str, Any]]:
            async with OpenAICompatibleClient(f"http://127.0.0.1:{port}/llm/v1", MODEL) as c:
                return await c.list_models(), await c.chat_json(MESSAGES, SCHEMA, max_tokens=64)

        models, answer = asyncio.run(ask())
        assert models == [MODEL]
        check_answer(answer)
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.mark.parametrize("error", [LLMUnavailable, LLMRequestRejected])
def test_status_errors_cross_ray_actors(error: type) -> None:
    import pickle

    copy = pickle.loads(pickle.dumps(error("HTTP 404: no such model", status_code=404)))
    assert type(copy) is error and copy.status_code == 404 and str(copy) == "HTTP 404: no such model"
