"""The log scan, run last: every API key, access and refresh token, webhook secret and email code the suite
handled (sign-up, verification, password reset, key creation, secret rotation, the faults and the load
above) is searched for in every log the service wrote: its own output, every Ray and Serve log, and
PostgreSQL's. None may appear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PASSWORD, token_in, unique_email
from reliability.fixtures import Figures, Inbox, Service
from reliability.servers import PrivatePostgres

pytestmark = pytest.mark.reliability


def exercise_secret_flows(service: Service, inbox: Inbox, seen: set[str]) -> None:
    """Sign-up by email, verification, a password reset, a new key, a rotation, a refresh."""
    email = unique_email()
    with httpx.Client(base_url=service.url, timeout=60) as client:
        assert (
            client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )
        code = token_in(inbox.wait_for(email, "Verify your CallCov email"))
        tokens = client.post("/api/v1/auth/verify-email", json={"code": code}).json()
        client.post("/api/v1/auth/password-reset", json={"email": email})
        reset = token_in(inbox.wait_for(email, "Reset your CallCov password"))
        new_password = "N3w-passw0rd!"
        confirmed = client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": reset, "new_password": new_password}
        )
        assert confirmed.status_code == 200, confirmed.text
        login = client.post("/api/v1/auth/login", json={"email": email, "password": new_password}).json()
        jwt = {"Authorization": f"Bearer {login['access_token']}"}
        refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}).json()
        key = client.post("/api/v1/api-keys", json={"mode": "test"}, headers=jwt).json()["api_key"]
        rotated = client.post("/api/v1/webhooks/secret/rotate", headers=jwt).json()
    seen.update({code, reset, key, tokens["access_token"], tokens["refresh_token"]})
    seen.update(
        {login["access_token"], login["refresh_token"], refreshed["access_token"], refreshed["refresh_token"]}
    )
    seen.update(value for value in rotated.values() if isinstance(value, str) and value.startswith("whsec_"))


def log_files(service: Service, postgres: PrivatePostgres) -> list[Path]:
    ray_logs = [
        path for path in (service.folder / "ray").rglob("*") if path.is_file() and "logs" in path.parts
    ]
    return [service.log, postgres.log, *ray_logs]


def test_no_secret_is_ever_logged(
    service: Service,
    postgres: PrivatePostgres,
    inbox: tuple[Inbox, int],
    secrets_seen: set[str],
    figures: Figures,
) -> None:
    exercise_secret_flows(service, inbox[0], secrets_seen)
    files = log_files(service, postgres)
    found: dict[str, list[str]] = {}
    scanned = 0
    for path in files:
        text = path.read_bytes().decode(errors="replace")
        scanned += len(text)
        for secret in secrets_seen:
            if secret in text:
                found.setdefault(path.name, []).append(secret[:10] + "…")
    result: dict[str, Any] = {
        "secrets": len(secrets_seen),
        "log_files": len(files),
        "bytes_scanned": scanned,
        "found": found,
    }
    figures.record("log_scan", result)
    assert len(secrets_seen) >= 12 and scanned > 0
    assert not found, result
