"""POST /analysis (and /calls/analyze): uploads streamed to storage, URL downloads with SSRF checks,
probing, validation, and the rows one submission creates (analysis, job, usage) exactly once."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import threading
import uuid
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import Account, SignUp, count, create_key, free_port
from fastapi import FastAPI
from sqlmodel import select

from callcov.models import Analysis, Job, UsageRecord
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio


def tone_wav(seconds: float = 2.0, rate: int = 16000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) * channels
            for i in range(int(seconds * rate))
        )
        out.writeframes(frames)
    return buffer.getvalue()


WAV = tone_wav()


def form(**fields: str) -> dict[str, str]:
    return {"agent_id": "agent_7", "contact_id": "cust_9", **fields}


async def submit(
    client: httpx.AsyncClient, key: str, audio: bytes = WAV, path: str = "/api/v1/analysis", **fields: str
):  # type: ignore[no-untyped-def]
    return await client.post(
        path,
        data=form(**fields),
        files={"audio_file": ("call.bin", audio, "application/octet-stream")},
        headers={"X-API-Key": key},
    )


class TestUpload:
    async def test_created_processing_with_probed_audio(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = await create_key(client, account, "live")
        r = await submit(
            client,
            key,
            metadata='{"campaign": "summer"}',
            call_direction="inbound",
            call_timestamp="2026-11-01T10:00:00Z",
            webhook_url="https://203.0.113.10/hook".replace("203.0.113.10", "93.184.215.14"),
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert (
            body["status"] == "processing" and body["livemode"] is True and body["analysis_id"] == body["id"]
        )
        assert body["audio"]["format"] == "wav" and body["audio"]["channels"] == 1
        assert body["audio"]["sample_rate"] == 16000 and body["audio"]["size_bytes"] == len(WAV)
        assert body["call"]["duration_ms"] == 2000 and body["call"]["direction"] == "inbound"
        assert body["call"]["timestamp"] == 1793527200
        assert body["metadata"]["campaign"] == "summer" and body["transcript"] is None
        analysis_id = uuid.UUID(body["id"])
        assert await count(app, UsageRecord, analysis_id=analysis_id) == 1
        async with state_of_app(app).sessionmaker() as session:
            jobs = (await session.exec(select(Job).where(Job.kind == "analysis"))).all()
            usage = (
                await session.exec(select(UsageRecord).where(UsageRecord.analysis_id == analysis_id))
            ).one()
        assert any(job.payload["analysis_id"] == body["id"] for job in jobs)
        assert usage.minutes == pytest.approx(2 / 60)
        fetched = await client.get(f"/api/v1/analysis/{body['id']}", headers={"X-API-Key": key})
        assert fetched.json() == body

    async def test_alias_and_test_mode_records_no_usage(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = await create_key(client, account, "test")
        r = await submit(client, key, path="/api/v1/calls/analyze")
        assert r.status_code == 201 and r.json()["livemode"] is False
        assert await count(app, UsageRecord, analysis_id=uuid.UUID(r.json()["id"])) == 0

    async def test_idempotent_replay_creates_nothing_more(
        self, client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
    ) -> None:
        account = await signed_up()
        key = await create_key(client, account, "live")
        headers = {"X-API-Key": key, "Idempotency-Key": str(uuid.uuid4())}
        files = {"audio_file": ("call.wav", WAV, "audio/wav")}
        responses = await asyncio.gather(
            *(client.post("/api/v1/analysis", data=form(), files=files, headers=headers) for _ in range(5))
        )
        assert {r.status_code for r in responses} <= {201, 409}
        replay = await client.post("/api/v1/analysis", data=form(), files=files, headers=headers)
        assert replay.headers["Idempotent-Replayed"] == "true"
        analysis_id = uuid.UUID(replay.json()["id"])
        user_id = await _user_id(app, account)
        assert await count(app, Analysis, user_id=user_id) == 1
        assert await count(app, UsageRecord, analysis_id=analysis_id) == 1


async def _user_id(app: FastAPI, account: Account) -> uuid.UUID:
    from callcov.models import User

    async with state_of_app(app).sessionmaker() as session:
        return (await session.exec(select(User).where(User.email == account.email))).one().id


class TestRefusals:
    @pytest.mark.parametrize(
        ("audio", "detected"),
        [
            (b"%PDF-1.7\n" + b"x" * 2000, "pdf"),
            (b"\x89PNG\r\n\x1a\n" + b"\0" * 2000, "png"),
            (b"just some text" * 50, "text"),
        ],
    )
    async def test_not_audio(
        self, client: httpx.AsyncClient, signed_up: SignUp, audio: bytes, detected: str
    ) -> None:
        key = await create_key(client, await signed_up(), "test")
        r = await submit(client, key, audio=audio)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_file_format"
        assert r.json()["error"]["details"]["detected_type"] == detected

    async def test_empty_and_corrupt(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        key = await create_key(client, await signed_up(), "test")
        for audio in (b"", WAV[:44], WAV[:44] + b"\x13\x37" * 10):
            r = await submit(client, key, audio=audio)
            assert r.status_code == 400, (audio[:50], r.text)
            assert r.json()["error"]["code"] == "invalid_file_format"

    async def test_exactly_one_source(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        key = await create_key(client, await signed_up(), "test")
        neither = await client.post("/api/v1/analysis", json=form(), headers={"X-API-Key": key})
        assert neither.status_code == 400 and "exactly one" in neither.json()["detail"]
        both = await submit(client, key, audio_url="https://example.com/a.wav")
        assert both.status_code == 400

    async def test_fields_are_validated(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        key = await create_key(client, await signed_up(), "test")
        missing = await client.post(
            "/api/v1/analysis",
            data={"contact_id": "c"},
            files={"audio_file": ("a", WAV)},
            headers={"X-API-Key": key},
        )
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "agent_id"]
        direction = await submit(client, key, call_direction="sideways")
        assert direction.status_code == 422
        bad_json = await submit(client, key, metadata="{not json")
        assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "validation_error"
        too_many = await submit(
            client, key, metadata=str({f"k{i}": "v" for i in range(51)}).replace("'", '"')
        )
        assert too_many.status_code == 400 and "50 keys" in too_many.json()["detail"]

    async def test_private_webhook_url_refused(self, client: httpx.AsyncClient, signed_up: SignUp) -> None:
        key = await create_key(client, await signed_up(), "test")
        for url in (
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest",
            "http://[::1]/x",
            "ftp://example.com/x",
        ):
            r = await submit(client, key, webhook_url=url)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url", url


class TestSizeLimit:
    async def test_over_the_limit_is_413_and_nothing_is_kept(
        self, app_factory, signed_up: SignUp, client: httpx.AsyncClient
    ) -> None:  # type: ignore[no-untyped-def]
        key = await create_key(client, await signed_up(), "test")
        async with app_factory(storage={"max_upload_bytes": 50_000}) as small:
            app = small._transport.app  # type: ignore[attr-defined]
            root = state_of_app(app).settings.storage_root
            before = set(root.rglob("*")) if root.exists() else set()
            r = await submit(small, key, audio=tone_wav(seconds=10))
            assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
            after = set(root.rglob("*")) if root.exists() else set()
            assert after == before


@pytest.fixture(scope="module")
def audio_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/redirect-out":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(WAV)))
            self.end_headers()
            self.wfile.write(WAV)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class TestAudioUrl:
    async def test_download_with_loopback_allowed(
        self, app_factory, audio_server: str, signed_up: SignUp, client: httpx.AsyncClient
    ) -> None:  # type: ignore[no-untyped-def]
        key = await create_key(client, await signed_up(), "test")
        async with app_factory(network={"url_allow": ["127.0.0.1/32"]}) as allowed:
            r = await allowed.post(
                "/api/v1/analysis",
                json=form(audio_url=f"{audio_server}/call.wav"),
                headers={"X-API-Key": key},
            )
            assert r.status_code == 201, r.text
            assert (
                r.json()["audio"]["url"] == f"{audio_server}/call.wav"
                and r.json()["call"]["duration_ms"] == 2000
            )
            out = await allowed.post(
                "/api/v1/analysis",
                json=form(audio_url=f"{audio_server}/redirect-out"),
                headers={"X-API-Key": key},
            )
            assert out.status_code == 400 and out.json()["error"]["code"] == "invalid_url"

    async def test_loopback_refused_by_default(
        self, client: httpx.AsyncClient, audio_server: str, signed_up: SignUp
    ) -> None:
        key = await create_key(client, await signed_up(), "test")
        for url in (
            f"{audio_server}/call.wav",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
        ):
            r = await client.post("/api/v1/analysis", json=form(audio_url=url), headers={"X-API-Key": key})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url", (url, r.text)
