"""Schemathesis fuzzes every operation of the OpenAPI document against a live server (bounded): no
response may be a 500, and every response must be one the document states, with its content type,
headers and body schema (issue 12, finding 11). Requests carry a real JWT (live) or API key, so
authenticated paths are fuzzed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import PASSWORD, server_env, token_in, unique_email, uvicorn_server
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = int(os.environ.get("CALLCOV_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def live_server(pg_url: str) -> Iterator[str]:
    with uvicorn_server(server_env(pg_url, CALLCOV_RATELIMIT__ENABLED="false")) as url:
        yield url


@pytest.fixture(scope="module")
def credentials(live_server: str, pg_url: str) -> dict[str, str]:
    import psycopg

    email = unique_email()
    with httpx.Client(base_url=live_server) as client:
        client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        with psycopg.connect(pg_url) as conn:
            body = conn.execute(
                "SELECT body_text FROM email_messages WHERE to_address = %s", (email,)
            ).fetchone()
        access = client.post("/api/v1/auth/verify-email", json={"code": token_in(body[0])}).json()[
            "access_token"
        ]
        key = client.post(
            "/api/v1/api-keys", json={"mode": "test"}, headers={"Authorization": f"Bearer {access}"}
        )
    return {"jwt": access, "api_key": key.json()["api_key"]}


def _openapi_document() -> dict[str, Any]:
    """The same document the server serves at /api/v1/openapi.json (building it needs no database).
    Loaded eagerly: schemathesis' lazy fixture loader does not run on this pytest version."""
    from callcov.config import Settings
    from callcov.main import create_app

    return create_app(Settings(environment="testing")).openapi()


schema = schemathesis.openapi.from_dict(_openapi_document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any, live_server: str, credentials: dict[str, str]) -> None:
    # Skip the endpoint that would end the fuzzing session's own account.
    if case.method == "DELETE" and case.path == "/api/v1/users/me":
        return
    credential = credentials["api_key"] if case.path.startswith("/api/v1/analysis") else credentials["jwt"]
    headers = {"Authorization": f"Bearer {credential}"}
    case.call_and_validate(base_url=live_server, headers=headers, checks=CHECKS)
