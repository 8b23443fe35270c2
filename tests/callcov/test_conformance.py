"""Issue 12, finding 11: a request carrying any invalid credential is refused, and the OpenAPI
document states every refusal an operation can answer (what schemathesis found undocumented)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from conftest import PASSWORD, create_key, sign_up
from fastapi import FastAPI

pytestmark = pytest.mark.asyncio

NIL = "00000000-0000-0000-0000-000000000000"


class TestMixedCredentials:
    async def test_any_invalid_credential_refuses_the_request(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account = await sign_up(client, app)
        key = await create_key(client, account)
        refused = [
            {**account.headers, "X-API-Key": ""},  # before: served with the JWT
            {**account.headers, "X-API-Key": "   "},
            {**account.headers, "X-API-Key": "sk_live_made_up"},
            {"X-API-Key": key, "Authorization": "Bearer not-a-jwt"},  # before: served with the key
            {"X-API-Key": key, "Authorization": account.headers["Authorization"]},  # two credentials
            {"X-API-Key": key, "Authorization": "Basic dXNlcjpwYXNz"},
        ]
        for headers in refused:
            r = await client.get("/api/v1/billing/subscription", headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
        same = {"X-API-Key": key, "Authorization": f"Bearer {key}"}
        for headers in (same, {"X-API-Key": key}, account.headers):
            assert (await client.get("/api/v1/billing/subscription", headers=headers)).status_code == 200


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


class TestDocumentedResponses:
    async def test_every_operation_documents_the_edge_refusals(self, app: FastAPI) -> None:
        for path, method, operation in operations(app):
            codes = set(operation["responses"])
            where = f"{method.upper()} {path}"
            if path == "/api/v1/billing/webhook":  # signed by Stripe: no credential, no rate limit
                assert {"400", "413"} <= codes, where
                continue
            assert {"401", "429"} <= codes, where
            assert "Retry-After" in operation["responses"]["429"]["headers"], where
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= codes, where
            if method == "post" and operation.get("security"):
                assert "409" in codes, where  # Idempotency-Key in use
            for code in ("400", "401", "413", "422", "429"):
                if code in codes:
                    schema = operation["responses"][code]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (where, code)

    async def test_schemas_state_the_rules_that_refuse_requests(self, app: FastAPI) -> None:
        doc = app.openapi()
        schemas = doc["components"]["schemas"]
        password = schemas["RegisterRequest"]["properties"]["password"]
        assert re.search(password["pattern"], PASSWORD)
        for weak in ("alllowercase1!", "ALLUPPER1!", "NoDigits!!", "NoSpecial11", "Sh0rt!"):
            assert not re.search(password["pattern"], weak), weak
        form = doc["paths"]["/api/v1/analysis"]["post"]["requestBody"]["content"]["multipart/form-data"]
        for name in ("agent_id", "contact_id"):
            assert form["schema"]["properties"][name]["minLength"] == 1
        url = schemas["SetWebhookRequest"]["properties"]["webhook_url"]
        assert not re.search(url["pattern"], "http://x\x00")
        phone = schemas["RegisterRequest"]["properties"]["phone_number"]["anyOf"][0]
        assert re.search(phone["pattern"], "+12025551234") and not re.search(
            phone["pattern"], "000000000000000"
        )
        cancel = schemas["SubscriptionCancel"]["properties"]["at_period_end"]
        assert cancel["type"] == "boolean"


class TestRefusalsMatchTheSchema:
    async def test_405_lists_every_method_of_the_path(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        documented: dict[str, set[str]] = {}
        for path, method, _ in operations(app):
            documented.setdefault(path, set()).add(method.upper())
        for path, methods in documented.items():
            url = re.sub(r"\{[^}]+\}", NIL, path)
            other = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in methods)
            r = await client.request(other, url)
            assert r.status_code == 405, (other, path)
            allowed = {m.strip() for m in r.headers["Allow"].split(",")} - {"HEAD"}
            assert allowed == methods, (path, r.headers["Allow"])

    async def test_a_replayed_405_keeps_its_allow_header(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account = await sign_up(client, app)
        headers = {**account.headers, "Idempotency-Key": str(uuid.uuid4())}
        for _ in range(2):
            r = await client.post("/api/v1/users/me", json={}, headers=headers)
            assert r.status_code == 405 and r.headers["Allow"], r.headers

    async def test_cancel_refuses_a_body_against_its_schema(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """Before: ``"false"`` and ``0`` were coerced to a boolean (the schema says boolean)."""
        account = await sign_up(client, app)
        for value in ("false", 0, "no"):
            r = await client.post(
                "/api/v1/billing/subscription/cancel", json={"at_period_end": value}, headers=account.headers
            )
            assert r.status_code == 422, (value, r.text)

    async def test_malformed_json_is_the_documented_400(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/api/v1/auth/login", content=b"\x03{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
