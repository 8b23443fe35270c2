"""``/health`` is readiness: the database answers and, where the app is told to check it (the Serve
ingress sets ``inference.check_llm``), the configured model is served by a route that refuses callers
without the internal key. ``/healthz`` is liveness only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import asgi_in_thread
from test_llm_check import KEY, endpoint

pytestmark = pytest.mark.asyncio


def llm_settings(url: str, model: str) -> dict[str, Any]:
    return {"llm_base_url": f"{url}/v1", "llm_model": model, "llm_api_key": KEY, "check_llm": True}


async def test_ready_when_the_model_is_served(app_factory: Callable[..., Any]) -> None:
    with asgi_in_thread(endpoint(["Qwen/Qwen2.5-7B-Instruct"])) as url:
        async with app_factory(inference=llm_settings(url, "Qwen/Qwen2.5-7B-Instruct")) as client:
            response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "llm": "ok"}}


async def test_not_ready_when_the_model_is_not_served(app_factory: Callable[..., Any]) -> None:
    with asgi_in_thread(endpoint(["Qwen/Qwen2.5-7B-Instruct"])) as url:
        async with app_factory(inference=llm_settings(url, "callcov-cpu-llm")) as client:
            response = await client.get("/health")
            alive = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert "'callcov-cpu-llm' is not served" in body["checks"]["llm"]
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}


async def test_not_ready_when_the_llm_route_is_public(app_factory: Callable[..., Any]) -> None:
    with asgi_in_thread(endpoint(["m"], guarded=False)) as url:
        async with app_factory(inference=llm_settings(url, "m")) as client:
            response = await client.get("/health")
    assert response.status_code == 503 and "without credentials" in response.json()["checks"]["llm"]


async def test_without_the_llm_check_only_the_database_counts(app_factory: Callable[..., Any]) -> None:
    async with app_factory() as client:
        response = await client.get("/health")
    assert response.status_code == 200 and response.json()["checks"] == {"database": "ok"}
