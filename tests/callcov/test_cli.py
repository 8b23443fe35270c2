"""The operator CLI against a real database: migrate, create a verified user, create a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PASSWORD, running, unique_email

from callcov.kit.tokens import api_key_checksum_ok

pytestmark = pytest.mark.asyncio


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callcov.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_operator_flow(tmp_path: Path) -> None:
    env = {**os.environ, "CALLCOV_DATA_DIR": str(tmp_path), "CALLCOV_DB__URL": ""}
    assert cli("migrate", env=env).returncode == 0
    email = unique_email()
    made = cli("create-user", email, "--password", PASSWORD, env=env)
    assert made.returncode == 0, made.stderr
    weak = cli("create-user", unique_email(), "--password", "weak", env=env)
    assert weak.returncode == 2 and "Password must" in weak.stderr
    key = cli("create-api-key", email, "--mode", "test", env=env).stdout.strip()
    assert key.startswith("sk_test_") and api_key_checksum_ok(key)
    assert "deleted 0" in cli("prune", env=env).stdout
    dry = cli("rescore", "--rubric", "default", "--account", email, "--mode", "test", "--dry-run", env=env)
    assert dry.returncode == 0 and "dry run: 0 analyses selected for default@" in dry.stdout, dry.stderr
    unknown = cli("rescore", "--rubric", "nope", "--account", email, env=env)
    assert unknown.returncode == 2 and "Unknown rubric 'nope'" in unknown.stderr
    empty = cli("rescore", "--rubric", "default", "--account", email, "--mode", "test", env=env)
    assert empty.returncode == 0 and "0 analyses selected" in empty.stdout and "completed" in empty.stdout
    capped = cli("set-overage-cap", email, "12000", env=env)
    assert capped.returncode == 0 and "12000" in capped.stdout, capped.stderr
    assert cli("set-overage-cap", email, "-1", env=env).returncode == 2

    from callcov.config import Settings
    from callcov.main import create_app

    async with running(create_app(Settings(data_dir=tmp_path))) as client:
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200  # the CLI's user is verified
        assert (await client.get("/api/v1/analysis", headers={"X-API-Key": key})).status_code == 200
        token = login.json()["access_token"]
        await client.post(
            "/api/v1/billing/subscription",
            json={"tier": "starter"},
            headers={"Authorization": f"Bearer {token}"},
        )
        sub = await client.get("/api/v1/billing/subscription", headers={"Authorization": f"Bearer {token}"})
        assert sub.json()["overage_cap_minutes"] == 12000
