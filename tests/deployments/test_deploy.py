"""``deployments.deploy``: settings from the operator's environment or a secret store, a clear error
for each missing production setting, and the PUT to the Serve REST API (a fake one on loopback)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments import deploy

GPU_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "serve.gpu.yaml"
SECRET = "s3cret-0123456789abcdef0123456789abcdef"
PRODUCTION = {
    "CALLCOV_DB__URL": "postgresql://callcov:pw@db.internal:5432/callcov",
    "CALLCOV_REDIS__URL": "redis://redis.internal:6379/0",
    "CALLCOV_STORAGE__BACKEND": "s3",
    "CALLCOV_STORAGE__S3_BUCKET": "callcov-audio",
    "CALLCOV_AUTH__JWT_SECRET": SECRET,
    "CALLCOV_AUTH__API_KEY_PEPPER": SECRET,
    "CALLCOV_WEBHOOKS__ENCRYPTION_KEYS": json.dumps([SECRET]),
    "CALLCOV_INFERENCE__LLM_API_KEY": SECRET,
}


class FakeServe:
    """Records the PUTs to /api/serve/applications/ and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b"" if outer.status == 200 else b"bad config")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def serve_api() -> Iterator[FakeServe]:
    fake = FakeServe()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()


def test_missing_production_settings_are_all_listed() -> None:
    env, _ = deploy.collect_env({"CALLCOV_DB__URL": "sqlite:///var/callcov.db", "HOME": "/root"}, {})
    with pytest.raises(deploy.DeployError) as error:
        deploy.check_env(env)
    message = str(error.value)
    for name in set(deploy.REQUIRED) - {"CALLCOV_DB__URL"}:
        assert f"{name} is not set" in message
    assert "CALLCOV_DB__URL is SQLite" in message


def test_placeholder_secrets_are_refused() -> None:
    env, _ = deploy.collect_env({**PRODUCTION, "CALLCOV_AUTH__JWT_SECRET": "short"}, {})
    with pytest.raises(deploy.DeployError, match="CALLCOV_AUTH__JWT_SECRET must be set to a random secret"):
        deploy.check_env(env)


def test_only_settings_travel_and_the_secret_store_wins() -> None:
    environ = {**PRODUCTION, "HOME": "/root", "CALLCOV_DB_URL": "typo", "AWS_SECRET_ACCESS_KEY": "aws"}
    env, ignored = deploy.collect_env(environ, {"CALLCOV_REDIS__URL": "redis://from-store:6379/0"})
    assert "HOME" not in env and env["AWS_SECRET_ACCESS_KEY"] == "aws"
    assert env["CALLCOV_REDIS__URL"] == "redis://from-store:6379/0"
    assert env["CALLCOV_ENVIRONMENT"] == "production"
    assert ignored == ["CALLCOV_DB_URL"]
    assert deploy.check_env(env).db.connection_budget == 90


def test_secret_store_output_formats() -> None:
    assert deploy.parse_secrets('{"A": "1", "B": [1]}') == {"A": "1", "B": "[1]"}
    assert deploy.parse_secrets("# c\nexport A='x=y'\n\nB=2\n") == {"A": "x=y", "B": "2"}
    with pytest.raises(deploy.DeployError):
        deploy.parse_secrets("not a pair")


def test_payload_carries_the_env_and_the_pools() -> None:
    config = yaml.safe_load(GPU_CONFIG.read_text())
    payload = deploy.build_payload(config, {"CALLCOV_DB__URL": "postgresql://x"}, 90)
    for app in payload["applications"]:
        assert app["runtime_env"]["env_vars"]["CALLCOV_DB__URL"] == "postgresql://x"
    args = {a["name"]: a["args"] for a in payload["applications"]}
    assert args["api"]["db_pool"] == {"pool_size": 5, "max_overflow": 10}
    with pytest.raises(deploy.DeployError, match="cannot share 5 database connections"):
        deploy.build_payload(config, {}, 5)


def test_deploy_puts_the_config_to_the_serve_api(serve_api: FakeServe, tmp_path: Path) -> None:
    store = tmp_path / "store.py"
    store.write_text(f"print({json.dumps({'CALLCOV_INFERENCE__LLM_API_KEY': 'from-the-store' + SECRET})!r})")
    environ = {**PRODUCTION, "RAY_AUTH_TOKEN": "tok"}
    argv = ["--config", str(GPU_CONFIG), "--address", serve_api.address]
    assert deploy.main([*argv, "--secrets-command", f"{sys.executable} {store}"], environ) == 0
    ((path, headers, body),) = serve_api.requests
    assert path == "/api/serve/applications/" and headers["Authorization"] == "Bearer tok"
    env_vars = body["applications"][0]["runtime_env"]["env_vars"]
    assert env_vars["CALLCOV_INFERENCE__LLM_API_KEY"] == "from-the-store" + SECRET
    assert env_vars["CALLCOV_DB__URL"] == PRODUCTION["CALLCOV_DB__URL"] and "RAY_AUTH_TOKEN" not in env_vars
    assert not list(tmp_path.glob("*.yaml"))  # nothing written


def test_deploy_fails_clearly(serve_api: FakeServe, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(GPU_CONFIG), "--address", serve_api.address]
    assert deploy.main(argv, {}) == 1
    assert "CALLCOV_DB__URL is not set" in capsys.readouterr().err and not serve_api.requests
    serve_api.status = 400
    assert deploy.main(argv, PRODUCTION) == 1
    assert "HTTP 400: bad config" in capsys.readouterr().err


def test_dry_run_redacts_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["--config", str(GPU_CONFIG), "--dry-run"], PRODUCTION) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and "pw@" not in out and "<redacted>" in out
    assert "CALLCOV_STORAGE__BACKEND: s3" in out
