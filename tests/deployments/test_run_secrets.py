"""``callcov-serve`` and ``deployments.deploy`` never put the published development secrets on a
non-loopback address (issue 12, finding 10a)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callcov.config import DEV_SECRET, Settings
from deployments import deploy, run

STRONG = "s3cret-0123456789abcdef0123456789abcdef"


def no_start(*_: Any, **__: Any) -> None:
    raise AssertionError("nothing may start before the secrets are checked")


@pytest.fixture
def dev_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Settings:
    settings = Settings(data_dir=tmp_path)
    monkeypatch.setattr(run, "get_settings", lambda: settings)
    monkeypatch.setattr(run, "run_migrations", no_start)
    monkeypatch.setattr(run.os, "execv", no_start)
    return settings


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20"])
def test_serve_refuses_a_public_bind_with_the_development_secrets(dev_settings: Settings, host: str) -> None:
    with pytest.raises(SystemExit, match="CALLCOV_AUTH__JWT_SECRET"):
        run.main(["--host", host])


def test_serve_refuses_a_config_that_binds_everywhere(dev_settings: Settings, tmp_path: Any) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("http_options:\n  host: 0.0.0.0\n  port: 8000\napplications: []\n")
    with pytest.raises(SystemExit, match="loopback"):
        run.main(["--config", str(config)])


def test_deploy_refuses_the_development_secrets_whatever_the_environment() -> None:
    env = {
        "CALLCOV_ENVIRONMENT": "development",
        "CALLCOV_DB__URL": "postgresql://callcov:pw@db.internal:5432/callcov",
        "CALLCOV_REDIS__URL": "redis://redis.internal:6379/0",
        "CALLCOV_STORAGE__BACKEND": "s3",
        "CALLCOV_STORAGE__S3_BUCKET": "callcov-audio",
        "CALLCOV_AUTH__JWT_SECRET": DEV_SECRET,
        "CALLCOV_AUTH__API_KEY_PEPPER": STRONG,
        "CALLCOV_WEBHOOKS__ENCRYPTION_KEYS": json.dumps([STRONG]),
        "CALLCOV_INFERENCE__LLM_API_KEY": STRONG,
    }
    with pytest.raises(deploy.DeployError, match="CALLCOV_AUTH__JWT_SECRET"):
        deploy.check_env(env)


def test_serve_starts_on_loopback_with_the_development_secrets(dev_settings: Settings) -> None:
    """The README's quick start (`scripts/run.sh`: the local config, 127.0.0.1) gets past the check."""
    with pytest.raises(AssertionError, match="nothing may start"):
        run.main([])  # reached run_migrations: the check passed
