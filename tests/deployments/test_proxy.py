"""The Serve proxy's middleware stamps one CallCov request id (with ``callcov.kit.request_id``)."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from deployments.proxy import ProxyRequestIdMiddleware


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
