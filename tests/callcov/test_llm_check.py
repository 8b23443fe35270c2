"""The start-up and /health check of the LLM endpoint: the configured model must be served, and the
route must refuse a caller without the internal key. Against an OpenAI-compatible test double over
ASGI (the real llama.cpp app behind Serve's proxy is checked in tests/deployments/test_gpu_shaped.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from callcov.inference.llm_check import (
    LLMNotServed,
    LLMRoutePublic,
    LLMUnreachable,
    check_llm,
    wait_for_llm,
)
from callcov.inference.openai_client import OpenAICompatibleClient

pytestmark = pytest.mark.asyncio
KEY = "internal-key"


def endpoint(models: list[str], *, guarded: bool = True, unavailable: int = 0) -> FastAPI:
    """Serves ``models``; refuses (404) a request without ``Bearer KEY`` when ``guarded``; answers 503
    to the first ``unavailable`` requests (a model still loading)."""
    app = FastAPI()
    state = {"unavailable": unavailable}

    @app.get("/v1/models")
    async def list_models(request: Request) -> Any:
        if guarded and request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse({"error": {"message": "Not Found"}}, status_code=404)
        if state["unavailable"]:
            state["unavailable"] -= 1
            return JSONResponse({"error": {"message": "loading"}}, status_code=503)
        return {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}

    return app


def client_for(app: FastAPI, model: str, key: str | None = KEY) -> OpenAICompatibleClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    return OpenAICompatibleClient("http://llm.test/v1", model, api_key=key, http=http)


async def test_the_served_model_passes() -> None:
    served = await check_llm(client_for(endpoint(["Qwen/Qwen2.5-7B-Instruct"]), "Qwen/Qwen2.5-7B-Instruct"))
    assert served == ["Qwen/Qwen2.5-7B-Instruct"]


async def test_a_model_that_is_not_served_fails_at_once_naming_what_is() -> None:
    client = client_for(endpoint(["Qwen/Qwen2.5-7B-Instruct"]), "callcov-cpu-llm")
    with pytest.raises(LLMNotServed, match=r"'callcov-cpu-llm'.*Qwen/Qwen2.5-7B-Instruct"):
        await wait_for_llm(client, timeout_s=60, interval_s=0.01)


async def test_a_route_that_answers_without_the_key_is_refused() -> None:
    client = client_for(endpoint(["m"], guarded=False), "m")
    with pytest.raises(LLMRoutePublic, match="without credentials"):
        await check_llm(client)
    assert await check_llm(client, require_private=False) == ["m"]


async def test_no_internal_key_is_a_clear_error() -> None:
    with pytest.raises(LLMRoutePublic, match="CALLCOV_INFERENCE__LLM_API_KEY"):
        await check_llm(client_for(endpoint(["m"]), "m", key=None))


async def test_a_loading_model_is_waited_for() -> None:
    client = client_for(endpoint(["m"], unavailable=3), "m")
    assert await wait_for_llm(client, timeout_s=30, interval_s=0.01) == ["m"]


async def test_an_endpoint_that_never_answers_times_out() -> None:
    client = OpenAICompatibleClient("http://127.0.0.1:9/v1", "m", api_key=KEY, timeout_s=1)
    with pytest.raises(LLMUnreachable, match="did not answer"):
        await wait_for_llm(client, timeout_s=0.5, interval_s=0.1)
