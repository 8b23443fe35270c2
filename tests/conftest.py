"""Shared fixtures: a fresh PostgreSQL database built by the migrations, Redis under a per-run key
prefix, the app over ASGI, and helpers that sign users up the way a client does (email included)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlmodel import col, func, select

from callcov.config import Settings
from callcov.db import run_migrations
from callcov.jobs import build_job_runners
from callcov.main import create_app
from callcov.models import EmailMessage
from callcov.state import state_of_app
from callcov.worker.wake import wake_channel
from callcov.worker.wiring import Runners

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The reliability suite's fixtures (its own PostgreSQL, Redis and service; created only when used).
pytest_plugins = ["reliability.fixtures"]

PG_ADMIN_URL = os.environ.get("CALLCOV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CALLCOV_TEST_REDIS", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "Sup3r-secret!"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database (dropped afterwards); yields its URL."""
    name = f"callcov_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        run_migrations(make_settings(url, Path("/tmp")))
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def make_settings(db_url: str, data_dir: Path, **groups: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "environment": "testing",
        "data_dir": data_dir,
        "db": {"url": db_url},
        "redis": {"url": REDIS_URL, "key_prefix": f"cctest:{uuid.uuid4().hex}:"},
        "auth": {"jwt_secret": TEST_SECRET, "api_key_pepper": TEST_SECRET},
        "ratelimit": {
            "default_per_window": 100_000,
            "submissions_per_window": 100_000,
            "auth_per_window": 100_000,
        },
        "email": {"backend": "outbox"},
    }
    for group, overrides in groups.items():
        values[group] = {**values.get(group, {}), **overrides}
    return Settings(**values)


def sqlite_settings(data_dir: Path, **groups: dict[str, Any]) -> Settings:
    """The embedded default (a SQLite file in ``data_dir``, no Redis), migrated, with test secrets."""
    settings = Settings(
        environment="testing",
        data_dir=data_dir,
        auth={"jwt_secret": TEST_SECRET, "api_key_pepper": TEST_SECRET},
        **groups,
    )
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    run_migrations(settings)
    return settings


@pytest.fixture(scope="session")
def settings_factory(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Settings]:
    data_dir = tmp_path_factory.mktemp("data")

    def factory(**groups: dict[str, Any]) -> Settings:
        return make_settings(pg_url, data_dir, **groups)

    return factory


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling ``app`` in process, from a loopback client address."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://callcov.test") as client:
        yield client


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        yield client


@pytest.fixture(scope="session")
def app_factory(settings_factory: Callable[..., Settings]) -> Callable[..., Any]:
    def factory(**groups: dict[str, Any]) -> Any:
        return running(create_app(settings_factory(**groups)))

    return factory


@pytest_asyncio.fixture(scope="session")
async def app(settings_factory: Callable[..., Settings]) -> AsyncIterator[FastAPI]:
    application = create_app(settings_factory())
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


class NoTranscriber:
    """The transcriber of runners whose test runs no analysis job."""

    async def transcribe(self, request: Any) -> Any:
        raise AssertionError("this test runs no transcription")


def job_runners(
    app: FastAPI,
    transcriber: Any = None,
    *,
    worker: dict[str, Any] | None = None,
    webhooks: dict[str, Any] | None = None,
    llm: Any = None,
) -> Runners:
    """The dispatcher's runners as production builds them (``callcov.jobs``), over the app's database,
    with a test double of the transcriber, an LLM test double (none by default), and
    ``worker``/``webhooks`` settings overrides."""
    state = state_of_app(app)
    settings = state.settings.model_copy(
        update={
            "worker": state.settings.worker.model_copy(update=worker or {}),
            "webhooks": state.settings.webhooks.model_copy(update=webhooks or {}),
        }
    )
    return build_job_runners(
        state.sessionmaker, settings, transcriber=transcriber or NoTranscriber(), llm=llm
    )


@asynccontextmanager
async def wake_ups(app: FastAPI) -> AsyncIterator[Callable[[int], Awaitable[list[str]]]]:
    """Subscribe to the app's wake-up channel; yields ``read(n)``: the next n job kinds published."""
    settings = state_of_app(app).settings.redis
    async with Redis.from_url(settings.url) as redis, redis.pubsub() as pubsub:
        await pubsub.subscribe(wake_channel(settings))

        async def read(n: int) -> list[str]:
            kinds: list[str] = []
            async with asyncio.timeout(10):
                while len(kinds) < n:  # None: nothing yet, or the subscription's confirmation
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None:
                        kinds.append(message["data"].decode())
            return kinds

        yield read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(pg_url: str, **overrides: str) -> dict[str, str]:
    """Environment for a CallCov server process of the tests (PostgreSQL, Redis, test secrets)."""
    return {
        **os.environ,
        "CALLCOV_ENVIRONMENT": "testing",
        "CALLCOV_DB__URL": pg_url,
        "CALLCOV_REDIS__URL": REDIS_URL,
        "CALLCOV_REDIS__KEY_PREFIX": f"cctest:{uuid.uuid4().hex}:",
        "CALLCOV_AUTH__JWT_SECRET": TEST_SECRET,
        "CALLCOV_AUTH__API_KEY_PEPPER": TEST_SECRET,
        "CALLCOV_LOG_LEVEL": "WARNING",
        # Assembled model weights are kept between runs (they come from the installed packages).
        "CALLCOV_MODELS_DIR": os.environ.get("CALLCOV_MODELS_DIR", "/tmp/callcov-models"),
        **overrides,
    }


@contextmanager
def uvicorn_server(env: dict[str, str]) -> Iterator[str]:
    """A real uvicorn process serving ``create_app`` on a free loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "callcov.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def callcov_serve(
    env: dict[str, str], port: int, log_path: Path, *, timeout_s: float = 240, config: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``callcov-serve`` (local Ray + every Serve app of the config) on ``port``; yields its base URL
    and process once ``/health`` answers. Stopped with SIGINT (Serve shuts down cleanly), SIGKILL as a
    last resort."""
    serve_bin = Path(sys.executable).parent / "callcov-serve"
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [str(serve_bin), "--port", str(port), *(["--config", str(config)] if config else [])],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while not _healthy(url):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"callcov-serve did not come up\n{log_tail(log_path)}")
            time.sleep(1)
        yield url, proc
    finally:
        stop_process_group(proc)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def stop_process_group(proc: subprocess.Popen[bytes], *, hard: bool = False) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def log_tail(path: Path, lines: int = 60) -> str:
    return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])


@contextmanager
def asgi_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """An ASGI app on a real loopback port (uvicorn in a background thread); yields its base URL."""
    import threading

    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def count(app: FastAPI, model: type, **where: object) -> int:
    async with state_of_app(app).sessionmaker() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int((await session.exec(query)).one())


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def last_email_token(app: FastAPI, email: str, kind: str) -> str:
    """Reads the newest outbox message of that kind to that address and returns the token in it."""
    state = state_of_app(app)
    async with state.sessionmaker() as session:
        message = (
            await session.exec(
                select(EmailMessage)
                .where(EmailMessage.to_address == email, EmailMessage.kind == kind)
                .order_by(col(EmailMessage.created_at).desc())
            )
        ).first()
    assert message is not None, f"no {kind} email to {email}"
    return token_in(message.body_text)


def token_in(text: str) -> str:
    found = re.search(r"token=([A-Za-z0-9_\-]+)", text)
    assert found, text
    return found.group(1)


@dataclass
class Account:
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


SignUp = Callable[..., Awaitable[Account]]


async def sign_up(client: httpx.AsyncClient, app: FastAPI, email: str | None = None) -> Account:
    email = email or unique_email()
    response = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    code = await last_email_token(app, email, "verify_email")
    tokens = (await client.post("/api/v1/auth/verify-email", json={"code": code})).json()
    return Account(email, PASSWORD, tokens["access_token"], tokens["refresh_token"])


@pytest.fixture
def signed_up(client: httpx.AsyncClient, app: FastAPI) -> SignUp:
    async def make(email: str | None = None) -> Account:
        return await sign_up(client, app, email)

    return make


async def create_key(client: httpx.AsyncClient, account: Account, mode: str = "live") -> str:
    response = await client.post("/api/v1/api-keys", json={"mode": mode}, headers=account.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


S3_BUCKET = "callcov-audio"


@contextmanager
def s3_server() -> Iterator[str]:
    """An S3 API server on loopback (moto's, standing in for AWS, MinIO or Ceph) with an empty
    ``S3_BUCKET``; yields its endpoint URL. Sets dummy AWS credentials meanwhile."""
    import boto3
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{port}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=S3_BUCKET)
            yield endpoint
        finally:
            server.stop()


class FakeDns:
    """Answers configured names, passes address literals to the real resolver, records every query."""

    def __init__(self, loop: asyncio.AbstractEventLoop, names: dict[str, list[str]]) -> None:
        self.real = loop.getaddrinfo
        self.names = names
        self.queries: list[str] = []

    async def __call__(self, host: Any, port: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        host = host.decode() if isinstance(host, bytes) else str(host)
        self.queries.append(host)
        if host in self.names:
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))
                for ip in self.names[host]
            ]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return await self.real(host, port, **kwargs)  # type: ignore[no-any-return]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], FakeDns]:
    def install(names: dict[str, list[str]]) -> FakeDns:
        loop = asyncio.get_running_loop()
        dns = FakeDns(loop, names)
        monkeypatch.setattr(loop, "getaddrinfo", dns)
        return dns

    return install
