"""The platform's side of the cluster simulation (``scripts/cluster_sim.py``): a fresh database, moto's
S3 server as the audio bucket, the operator's settings, and a client of the public API (sign-up,
submissions, health)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from record_sim_fixtures import CALL_DIRECTION
from sim_cluster import free_port
from webhook_receiver import Receiver

PG_ADMIN_URL = os.environ.get("CALLCOV_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CALLCOV_TEST_REDIS", "redis://127.0.0.1:6379/0")
BUCKET = "callcov-sim-audio"
PASSWORD = "Sup3r-secret!"


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    from callcov.db import run_migrations

    name = f"callcov_sim_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with _env({"CALLCOV_DB__URL": url, "CALLCOV_ENVIRONMENT": "testing"}):
            from callcov.config import Settings

            run_migrations(Settings())
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on loopback, standing in for the operator's bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="sim",
            aws_secret_access_key="sim",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def settings_env(db_url: str, s3: str, serve_port: int, key: str, data_dir: Path) -> dict[str, str]:
    """What the operator's environment holds for ``deployments.deploy`` (test secrets)."""
    secret = secrets.token_urlsafe(32)
    return {
        "CALLCOV_ENVIRONMENT": "testing",
        "CALLCOV_DATA_DIR": str(data_dir),
        "CALLCOV_LOG_LEVEL": "WARNING",
        "CALLCOV_DB__URL": db_url,
        "CALLCOV_REDIS__URL": REDIS_URL,
        "CALLCOV_REDIS__KEY_PREFIX": f"ccsim:{uuid.uuid4().hex}:",
        "CALLCOV_STORAGE__BACKEND": "s3",
        "CALLCOV_STORAGE__S3_BUCKET": BUCKET,
        "CALLCOV_STORAGE__S3_ENDPOINT_URL": s3,
        "CALLCOV_STORAGE__S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "sim",
        "AWS_SECRET_ACCESS_KEY": "sim",
        "CALLCOV_AUTH__JWT_SECRET": secret,
        "CALLCOV_AUTH__API_KEY_PEPPER": secrets.token_urlsafe(32),
        "CALLCOV_WEBHOOKS__ENCRYPTION_KEYS": json.dumps([secrets.token_urlsafe(32)]),
        "CALLCOV_INFERENCE__LLM_API_KEY": key,
        "CALLCOV_INFERENCE__LLM_BASE_URL": f"http://127.0.0.1:{serve_port}/llm/v1",
        "CALLCOV_NETWORK__URL_ALLOW": '["127.0.0.0/8"]',
        "CALLCOV_RATELIMIT__DEFAULT_PER_WINDOW": "100000",
        "CALLCOV_RATELIMIT__SUBMISSIONS_PER_WINDOW": "100000",
        "CALLCOV_WORKER__POLL_INTERVAL_S": "1",
    }


def sign_up(url: str, db_url: str, receiver: Receiver) -> dict[str, str]:
    """A verified account on the starter plan (full analysis), its live API key; the receiver learns
    the account's webhook secret."""
    email = f"sim-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        with psycopg.connect(db_url) as conn:
            body = conn.execute(
                "SELECT body_text FROM email_messages WHERE to_address = %s", (email,)
            ).fetchone()
        code = body[0].split("token=", 1)[1].split()[0].strip(".,)\"'")
        tokens = client.post("/api/v1/auth/verify-email", json={"code": code}).json()
        jwt = {"Authorization": f"Bearer {tokens['access_token']}"}
        client.post("/api/v1/billing/subscription", json={"tier": "starter"}, headers=jwt).raise_for_status()
        key = client.post("/api/v1/api-keys", json={"mode": "live"}, headers=jwt).json()["api_key"]
        receiver.secrets = [client.get("/api/v1/webhooks/secret", headers=jwt).json()["secret"]]
    return {"X-API-Key": key}


def submit(url: str, headers: dict[str, str], audio: Path, webhook_url: str, n: int) -> str:
    with audio.open("rb") as file:
        r = httpx.post(
            f"{url}/api/v1/analysis",
            headers=headers,
            timeout=60,
            data={
                "agent_id": f"agent_{n % 5}",
                "contact_id": f"cust_{n}",
                "call_direction": CALL_DIRECTION,
                "webhook_url": webhook_url,
            },
            files={"audio_file": (audio.name, file, "audio/wav")},
        )
    if r.status_code != 201:
        raise RuntimeError(f"submission {n}: HTTP {r.status_code}: {r.text[:300]}")
    return str(r.json()["id"])


def wait_for(what: str, predicate: Any, timeout_s: float, interval_s: float = 1.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return time.time()
        time.sleep(interval_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).json().get("status") == "ok"
    except (httpx.HTTPError, ValueError):
        return False
