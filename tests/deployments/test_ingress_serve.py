"""The real run command: ``callcov-serve`` starts local Ray and the Serve ingress; we call it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import PASSWORD, free_port, server_env, token_in, unique_email

pytestmark = pytest.mark.serve


@pytest.fixture(scope="module")
def served(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = server_env(pg_url, CALLCOV_DATA_DIR=str(tmp_path_factory.mktemp("serve")), CALLCOV_LOG_LEVEL="INFO")
    serve_bin = Path(sys.executable).parent / "callcov-serve"
    log = open(tmp_path_factory.mktemp("serve-log") / "serve.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(serve_bin), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert proc.poll() is None, _tail(log)
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        else:
            pytest.fail("Serve did not come up in 180 s\n" + _tail(log))
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _tail(log: object) -> str:
    log.seek(0)  # type: ignore[attr-defined]
    return "".join(log.readlines()[-40:])  # type: ignore[attr-defined]


def test_sign_up_and_call_through_serve(served: str, pg_url: str) -> None:
    email = unique_email()
    with httpx.Client(base_url=served, timeout=30) as client:
        r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        with psycopg.connect(pg_url) as conn:
            body = conn.execute(
                "SELECT body_text FROM email_messages WHERE to_address = %s ORDER BY created_at DESC",
                (email,),
            ).fetchone()
        tokens = client.post("/api/v1/auth/verify-email", json={"code": token_in(body[0])}).json()
        me = client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200 and me.json()["email"] == email
        # One request id per response, in CallCov's format, through Serve's proxy.
        assert len(me.headers.get_list("x-request-id")) == 1
        assert me.headers["x-request-id"].startswith("req_")
        assert me.headers["X-RateLimit-Limit"] == "100"
        missing = client.get(
            "/api/v1/analysis/" + str(uuid.uuid4()),
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]
