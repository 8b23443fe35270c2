"""Oversized request headers are refused with 431 before any layer reads them (issue 12: the reliability
suite's 1 MiB header and 2,000 headers were both answered 200)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Big": "a" * (1 << 20)},
        {"X-Big": "a" * (33 * 1024)},
        {f"X-H{n}": "v" for n in range(101)},
    ],
    ids=["1MiB", "33KiB", "101-fields"],
)
async def test_oversized_headers_get_431(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.get("/api/v1/billing/tiers", headers=headers)
    assert r.status_code == 431
    error = r.json()["error"]
    assert error["code"] == "request_header_fields_too_large"
    assert error["details"] == {"max_header_fields": 100, "max_header_bytes": 32768}
    assert error["request_id"] == r.headers["x-request-id"]


async def test_ordinary_headers_pass(client: httpx.AsyncClient) -> None:
    headers = {"X-Big": "a" * (16 * 1024), **{f"X-H{n}": "v" for n in range(60)}}
    assert (await client.get("/api/v1/billing/tiers", headers=headers)).status_code == 200
