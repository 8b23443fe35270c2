"""CONTRACT.md §1 conventions: error body, request ids, trailing slashes, no stack traces, OpenAPI."""

from __future__ import annotations

import httpx
import pytest
from conftest import running

from callcov.main import create_app

pytestmark = pytest.mark.asyncio


class TestErrors:
    async def test_error_body_has_both_shapes(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/api/v1/users/me")
        body = r.json()
        assert set(body) == {"detail", "error"}
        assert set(body["error"]) == {"code", "message", "details", "request_id"}
        assert body["detail"] == body["error"]["message"]
        assert body["error"]["request_id"] == r.headers["X-Request-ID"]
        assert r.headers["X-Request-ID"].startswith("req_")

    async def test_validation_error_keeps_fastapi_list(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/api/v1/auth/login", json={"email": "x@example.com"})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "password"]
        assert r.json()["error"]["code"] == "validation_error"

    async def test_malformed_json_is_400(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"

    async def test_unknown_path_and_method(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/api/v1/nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await client.patch("/api/v1/users/me")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"

    async def test_500_without_stack_trace(self, settings_factory) -> None:  # type: ignore[no-untyped-def]
        app = create_app(settings_factory())

        @app.get("/api/v1/boom")
        async def boom() -> None:
            raise RuntimeError("secret internals /etc/passwd")

        async with running(app) as client:
            r = await client.get("/api/v1/boom")
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "internal_error"
        assert "secret" not in r.text and "Traceback" not in r.text
        assert r.headers["X-Request-ID"] == r.json()["error"]["request_id"]
        assert "X-RateLimit-Limit" in r.headers


class TestRequestIds:
    async def test_every_response_has_one(self, client: httpx.AsyncClient) -> None:
        ids = {(await client.get("/api/v1/users/me")).headers["X-Request-ID"] for _ in range(5)}
        assert len(ids) == 5

    async def test_well_formed_upstream_id_is_kept(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/api/v1/users/me", headers={"X-Request-ID": "req_fromupstream1"})
        assert r.headers["X-Request-ID"] == "req_fromupstream1"
        r = await client.get("/api/v1/users/me", headers={"X-Request-ID": "<script>"})
        assert r.headers["X-Request-ID"].startswith("req_") and r.headers["X-Request-ID"] != "<script>"


class TestPaths:
    @pytest.mark.parametrize("path", ["/api/v1/api-keys", "/api/v1/api-keys/", "/api/v1/users/me/"])
    async def test_with_and_without_trailing_slash(self, client: httpx.AsyncClient, path: str) -> None:
        r = await client.get(path)
        assert r.status_code == 401  # routed (auth required), not 404, not a redirect


class TestOpenApi:
    async def test_document(self, client: httpx.AsyncClient) -> None:
        doc = (await client.get("/api/v1/openapi.json")).json()
        paths = doc["paths"]
        for path in ("/api/v1/auth/register", "/api/v1/users/me", "/api/v1/api-keys", "/api/v1/analysis"):
            assert path in paths
        schemes = doc["components"]["securitySchemes"]
        assert {"APIKeyHeader", "HTTPBearer"} <= set(schemes)
        assert "ErrorBody" in doc["components"]["schemas"]
        assert (await client.get("/api/v1/docs")).status_code == 200
