"""The reliability suite's service: ``callcov-serve`` with ``configs/serve.faults.yaml`` (real API,
dispatcher, queue and webhooks; model stand-ins) on this suite's own PostgreSQL and Redis, an account
with a live key, a verifying webhook receiver, and the figures each test records for
``docs/reliability.md`` (written to ``$CALLCOV_RELIABILITY_REPORT``, default ``var/reliability.json``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PASSWORD, asgi_in_thread, free_port, server_env, stop_process_group, unique_email
from reliability.servers import PrivatePostgres, PrivateRedis
from webhook_receiver import Receiver

from callcov.config import Settings
from callcov.db import run_migrations

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "serve.faults.yaml"
REPORT = Path(os.environ.get("CALLCOV_RELIABILITY_REPORT", ROOT / "var" / "reliability.json"))


class Service:
    """``callcov-serve`` as a process group that the tests can kill -9 and start again."""

    def __init__(self, env: dict[str, str], port: int, folder: Path) -> None:
        self.env, self.port, self.folder = env, port, folder
        self.url = f"http://127.0.0.1:{port}"
        self.log = folder / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 240) -> float:
        started = time.monotonic()
        serve_bin = Path(sys.executable).parent / "callcov-serve"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [str(serve_bin), "--port", str(self.port), "--config", str(CONFIG)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        self.wait_healthy(timeout_s)
        return time.monotonic() - started

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).json().get("status") == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    def wait_healthy(self, timeout_s: float) -> float:
        started = time.monotonic()
        while not self.healthy():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"callcov-serve exited:\n{self.log.read_text()[-4000:]}")
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"not healthy in {timeout_s} s:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.5)
        return time.monotonic() - started

    def kill(self) -> None:
        """kill -9 of the whole service: the proxy, every replica, Ray's own processes."""
        if self.proc is not None:
            stop_process_group(self.proc, hard=True)
        subprocess.run(
            [str(Path(sys.executable).parent / "ray"), "stop", "--force"],
            env=self.env,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
        self.kill()


class Figures:
    """What the suite measured, by section; written as JSON at the end of the session."""

    def __init__(self) -> None:
        self.sections: dict[str, Any] = {}

    def record(self, section: str, values: Any) -> None:
        self.sections[section] = values

    def write(self) -> None:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(self.sections, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    collected = Figures()
    yield collected
    collected.write()


@pytest.fixture(scope="session")
def secrets_seen() -> set[str]:
    """Every API key, token, webhook secret and email code the suite handled (scanned for in the logs)."""
    return set()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(free_port())
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Inbox:
    """An SMTP server on loopback (aiosmtpd) that keeps every mail the service sends."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def wait_for(self, to: str, subject: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in reversed(self.messages):
                if message["To"] == to and subject in message["Subject"]:
                    return str(message.get_content())
            time.sleep(0.1)
        raise AssertionError(f"no mail '{subject}' to {to}")


@pytest.fixture(scope="session")
def inbox() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    mailbox, port = Inbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture(scope="session")
def service(
    postgres: PrivatePostgres, private_redis: PrivateRedis, inbox: tuple[Inbox, int]
) -> Iterator[Service]:
    db_url = postgres.admin_url
    folder = Path(tempfile.mkdtemp(prefix="ccrel-"))
    env = server_env(
        db_url,
        CALLCOV_DATA_DIR=str(folder / "data"),
        CALLCOV_REDIS__URL=private_redis.url,
        CALLCOV_LOG_LEVEL="INFO",
        CALLCOV_WORKER__POLL_INTERVAL_S="1",
        CALLCOV_WORKER__LEASE_S="15",
        CALLCOV_NETWORK__URL_ALLOW='["127.0.0.0/8"]',
        CALLCOV_RATELIMIT__DEFAULT_PER_WINDOW="100000",
        CALLCOV_RATELIMIT__SUBMISSIONS_PER_WINDOW="100000",
        # schemathesis hammers /auth/*: the per-address auth bucket is tested in tests/callcov.
        CALLCOV_RATELIMIT__AUTH_PER_WINDOW="100000",
        # Mail goes to the suite's SMTP server, where the log scan learns the codes it must not find.
        CALLCOV_EMAIL__BACKEND="smtp",
        CALLCOV_EMAIL__SMTP_PORT=str(inbox[1]),
        # Ray's logs and sockets under the suite's folder (short: Unix socket paths are limited).
        RAY_TMPDIR=str(folder / "ray"),
    )
    run_migrations(Settings(_env_file=None, environment="testing", db={"url": db_url}))  # type: ignore[call-arg]
    svc = Service(env, free_port(), folder)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with asgi_in_thread(hook) as url:
        yield hook, f"{url}/hooks"


def new_account(service: Service, secrets_seen: set[str], *, tier: str = "starter") -> dict[str, Any]:
    """A verified user (the operator's CLI) on ``tier``, with a live API key and its webhook secret."""
    email = unique_email()
    cli = Path(sys.executable).parent / "callcov"
    subprocess.run(
        [str(cli), "create-user", email, "--password", PASSWORD],
        env=service.env,
        check=True,
        capture_output=True,
    )
    with httpx.Client(base_url=service.url, timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        tokens = login.json()
        jwt = {"Authorization": f"Bearer {tokens['access_token']}"}
        if tier != "free":
            client.post("/api/v1/billing/subscription", json={"tier": tier}, headers=jwt).raise_for_status()
        created = client.post("/api/v1/api-keys", json={"mode": "live"}, headers=jwt)
        created.raise_for_status()
        key = created.json()["api_key"]
        secret = client.get("/api/v1/webhooks/secret", headers=jwt).json()["secret"]
    secrets_seen.update({key, secret, tokens["access_token"], tokens["refresh_token"]})
    return {"email": email, "key": {"X-API-Key": key}, "jwt": jwt, "tokens": tokens, "webhook_secret": secret}


@pytest.fixture(scope="session")
def account(service: Service, receiver: tuple[Receiver, str], secrets_seen: set[str]) -> dict[str, Any]:
    """The account the suite submits with; the receiver verifies with its webhook secret."""
    made = new_account(service, secrets_seen)
    receiver[0].secrets = [made["webhook_secret"]]
    return made
