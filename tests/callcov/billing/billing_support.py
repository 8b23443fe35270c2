"""Fixtures and helpers of the billing tests: localstripe on loopback, an HTTP stub of the Stripe
customer portal (which localstripe lacks), Stripe-style webhook signatures, seeded usage, and running
billing jobs. Test modules take the fixtures with ``from billing_support import *``."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import struct
import subprocess
import sys
import threading
import time
import uuid
import wave
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Account, free_port, job_runners, running, sign_up, stop_process_group
from fastapi import FastAPI
from sqlmodel import col, select

from callcov.kit.time import utcnow
from callcov.main import create_app
from callcov.models import Analysis, Job, Subscription, UsageRecord
from callcov.state import state_of_app

__all__ = ["localstripe_url", "portal_stub_url"]

WEBHOOK_SECRET = "whsec_test_callcov_0123456789abcdef"
STRIPE_KEY = "sk_test_callcov_localstripe"


def tone_wav(seconds: float = 2.0, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return buffer.getvalue()


WAV = tone_wav()
WAV_MINUTES = 2.0 / 60


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/v1/customers", auth=(STRIPE_KEY, ""), timeout=1)
        return True
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """localstripe (customers, payment methods, products, plans, subscriptions, invoices) on a free
    loopback port, fresh state; stopped at the end of the session. It listens on every interface, so
    the tests only ever send it loopback traffic."""
    port = free_port()
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "localstripe"), "--from-scratch", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _answers(url):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield url
    stop_process_group(proc)


class PortalStub(BaseHTTPRequestHandler):
    """STUB of Stripe's ``POST /v1/billing_portal/sessions`` (localstripe has no billing portal).
    Every other request is forwarded to localstripe unchanged, and logged in ``requests``."""

    upstream = ""
    sessions: list[dict[str, str]] = []
    # Every request seen (method, path with query, form body), in order: what CallCov sent to Stripe.
    requests: list[tuple[str, str, str]] = []

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        PortalStub.requests.append((self.command, self.path, body.decode(errors="replace")))
        if self.command == "POST" and self.path.startswith("/v1/billing_portal/sessions"):
            form = dict(httpx.QueryParams(body.decode()))
            session = {
                "id": f"bps_stub_{uuid.uuid4().hex[:12]}",
                "object": "billing_portal.session",
                "customer": form.get("customer", ""),
                "return_url": form.get("return_url", ""),
                "url": f"https://billing.stripe.test/p/session/{uuid.uuid4().hex}",
            }
            PortalStub.sessions.append(session)
            self._reply(200, json.dumps(session).encode(), "application/json")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = httpx.request(self.command, self.upstream + self.path, headers=headers, content=body)
        self._reply(upstream.status_code, upstream.content, upstream.headers.get("content-type", ""))

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="session")
def portal_stub_url(localstripe_url: str) -> Iterator[str]:
    PortalStub.upstream = localstripe_url
    server = ThreadingHTTPServer(("127.0.0.1", 0), PortalStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def stripe_billing(api_base: str, **overrides: Any) -> dict[str, Any]:
    return {
        "stripe_secret_key": STRIPE_KEY,
        "stripe_api_base": api_base,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_create_plans": True,
        "stripe_max_network_retries": 0,
        **overrides,
    }


@asynccontextmanager
async def billing_app(
    settings_factory: Any, **billing: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings_factory(billing=billing))
    async with running(app) as client:
        yield app, client


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` exactly as Stripe computes it: HMAC-SHA256 of ``"<t>.<payload>"``."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def stripe_event(kind: str, obj: dict[str, Any], *, created: int, event_id: str | None = None) -> bytes:
    event = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "livemode": False,
        "type": kind,
        "data": {"object": obj},
    }
    return json.dumps(event).encode()


async def user_id_of(client: httpx.AsyncClient, account: Account) -> uuid.UUID:
    me = await client.get("/api/v1/users/me", headers=account.headers)
    return uuid.UUID(me.json()["id"])


async def new_account(client: httpx.AsyncClient, app: FastAPI) -> tuple[Account, uuid.UUID]:
    """A verified account whose (free) subscription exists, so that seeded usage falls in its period."""
    account = await sign_up(client, app)
    r = await client.get("/api/v1/billing/subscription", headers=account.headers)
    assert r.status_code == 200, r.text
    return account, await user_id_of(client, account)


async def seed_usage(app: FastAPI, user_id: uuid.UUID, minutes: float, *, days_ago: float = 0) -> None:
    """An earlier live analysis of ``minutes`` this period (written as create_analysis writes it)."""
    when = utcnow() - timedelta(days=days_ago)
    async with state_of_app(app).sessionmaker() as session:
        analysis = Analysis(
            user_id=user_id,
            livemode=True,
            agent_id="seed",
            contact_id="seed",
            status="completed",
            created_at=when,
        )
        session.add(analysis)
        await session.flush()
        session.add(UsageRecord(user_id=user_id, analysis_id=analysis.id, minutes=minutes, created_at=when))
        await session.commit()


async def subscription_row(app: FastAPI, user_id: uuid.UUID) -> Subscription:
    async with state_of_app(app).sessionmaker() as session:
        row = (await session.exec(select(Subscription).where(Subscription.user_id == user_id))).one()
        return row


async def update_subscription(app: FastAPI, user_id: uuid.UUID, **values: Any) -> None:
    async with state_of_app(app).sessionmaker() as session:
        row = (await session.exec(select(Subscription).where(Subscription.user_id == user_id))).one()
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
        await session.commit()


async def run_billing_jobs(app: FastAPI, kind: str, key: str, value: str) -> int:
    """Run the queued billing jobs of one kind whose payload has ``key == value`` through their
    handler (as the dispatcher would), marking each done; returns how many ran."""
    state = state_of_app(app)
    handlers = job_runners(app)["billing"].handlers  # the production wiring (callcov.jobs)
    async with state.sessionmaker() as session:
        jobs = [
            job
            for job in (
                await session.exec(select(Job).where(Job.kind == kind, col(Job.status) == "queued"))
            ).all()
            if str(job.payload.get(key)) == value
        ]
    for job in jobs:
        await handlers[kind](job)
        async with state.sessionmaker() as session:
            row = await session.get(Job, job.id)
            assert row is not None
            row.status = "done"
            session.add(row)
            await session.commit()
    return len(jobs)


async def submit(
    client: httpx.AsyncClient, headers: dict[str, str], audio: bytes = WAV, **extra: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/analysis",
        data={"agent_id": "agent_1", "contact_id": "cust_1", **extra},
        files={"audio_file": ("call.wav", audio, "application/octet-stream")},
        headers=headers,
    )


async def stripe_account(
    app: FastAPI, client: httpx.AsyncClient
) -> tuple[dict[str, str], uuid.UUID, str, str]:
    """An account on starter whose Stripe customer and subscription ids are known."""
    account, user_id = await new_account(client, app)
    customer, sub_id = f"cus_{uuid.uuid4().hex[:14]}", f"sub_{uuid.uuid4().hex[:14]}"
    await update_subscription(
        app,
        user_id,
        tier="starter",
        provider="stripe",
        stripe_customer_id=customer,
        stripe_subscription_id=sub_id,
    )
    return account.headers, user_id, customer, sub_id
