"""The Serve proxy's middleware stamps one CallCov request id (with ``callcov.kit.request_id``)."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from deployments.proxy import InternalRouteGuard, ProxyRequestIdMiddleware, proxy_middlewares


async def echo_request_id(scope: Scope, _receive: Receive, send: Send) -> None:
    """An app that answers with the id it was given, plus a second X-Request-ID of its own."""
    given = dict(scope["headers"])[b"x-request-id"]
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"uuid-from-serve")]}
    )
    await send({"type": "http.response.body", "body": given})


@pytest.mark.asyncio
async def test_proxy_middleware_stamps_one_id() -> None:
    transport = httpx.ASGITransport(app=ProxyRequestIdMiddleware(echo_request_id))
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
        fresh = await client.get("/")
        kept = await client.get("/", headers={"X-Request-ID": "req_fromclient1"})
    assert fresh.headers.get_list("x-request-id") == [fresh.text] and fresh.text.startswith("req_")
    assert kept.headers.get_list("x-request-id") == ["req_fromclient1"] == [kept.text]


async def ok(scope: Scope, _receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"reached"})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "headers", "reached"),
    [
        ("/llm/v1/models", {}, False),
        ("/llm/v1/chat/completions", {"Authorization": "Bearer wrong"}, False),
        ("/llm/v1/chat/completions", {"Authorization": "Bearer sk_live_abc"}, False),
        ("/llm", {}, False),
        ("/LLM/v1/models", {}, False),
        ("/llm/v1/models", {"Authorization": "Bearer internal-key"}, True),
        ("/api/v1/users/me", {}, True),
        ("/llmx", {}, True),
    ],
)
async def test_internal_routes_need_the_internal_key(
    path: str, headers: dict[str, str], reached: bool
) -> None:
    guard = InternalRouteGuard(ok, prefixes=("/llm",), key="internal-key")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://proxy.test") as c:
        response = await c.post(path, headers=headers)
    if reached:
        assert response.status_code == 200 and response.text == "reached"
    else:
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.asyncio
async def test_without_a_key_every_internal_request_is_refused() -> None:
    guard = InternalRouteGuard(ok, prefixes=("/llm",), key="")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://proxy.test") as c:
        assert (await c.get("/llm/v1/models", headers={"Authorization": "Bearer "})).status_code == 404


def test_the_proxy_installs_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCOV_INFERENCE__LLM_API_KEY", "internal-key")
    names = [m.cls.__name__ for m in proxy_middlewares()]
    assert names == ["ProxyRequestIdMiddleware", "HeaderLimitMiddleware", "InternalRouteGuard"]


def test_doubled_slashes_do_not_slip_past() -> None:
    guard = InternalRouteGuard(ok, prefixes=("/llm/",), key="k")
    assert guard._internal("//llm/v1/models") and guard._internal("/llm") and not guard._internal("/api/llm")


@pytest.mark.asyncio
async def test_the_proxy_refuses_huge_headers_with_its_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (issue 12, reliability suite): a 1 MiB header used to reach the routes with 200."""
    monkeypatch.setenv("CALLCOV_INFERENCE__LLM_API_KEY", "internal-key")
    app = ok
    for middleware in reversed(proxy_middlewares()):
        app = middleware.cls(app, *middleware.args, **middleware.kwargs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy.test") as c:
        response = await c.get("/api/v1/billing/tiers", headers={"X-Big": "a" * (1 << 20)})
        fine = await c.get("/api/v1/billing/tiers", headers={"X-Small": "a" * 1000})
    assert response.status_code == 431
    body = response.json()["error"]
    assert body["code"] == "request_header_fields_too_large"
    assert body["request_id"] == response.headers["x-request-id"] and body["request_id"].startswith("req_")
    assert fine.status_code == 200
