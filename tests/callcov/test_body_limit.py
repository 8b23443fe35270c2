"""The global request-body limit (issue 12, finding 5): 1 MiB for every body but an audio upload,
refused with 413 from Content-Length before anything is read, and while streaming a chunked body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import create_key, sign_up
from test_submission import WAV

pytestmark = pytest.mark.asyncio

MiB = 1024 * 1024


class Chunks:
    """A request body of ``count`` chunks of ``size`` bytes that records how many were read."""

    def __init__(self, count: int, size: int = 64 * 1024, first: bytes = b"") -> None:
        self.count, self.size, self.first, self.read = count, size, first, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(self.count):
            self.read += 1
            yield (self.first if i == 0 and self.first else b"x" * self.size)

    @property
    def total(self) -> int:
        return len(self.first) + self.size * (self.count - (1 if self.first else 0))


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "file_too_large"
    assert response.json()["error"]["request_id"] == response.headers["X-Request-ID"]


class TestJsonBodies:
    async def test_declared_length_over_the_limit_is_refused_unread(self, client: httpx.AsyncClient) -> None:
        """Before: an 8 MB body to /auth/login was read whole and answered 422."""
        body = Chunks(128)  # 8 MiB
        headers = {"Content-Type": "application/json", "Content-Length": str(body.total)}
        r = await client.post("/api/v1/auth/login", content=body, headers=headers)
        assert_413(r)
        assert r.json()["error"]["details"]["max_size_bytes"] == MiB
        assert body.read == 0

    async def test_chunked_body_is_cut_while_streaming(self, client: httpx.AsyncClient) -> None:
        body = Chunks(128, first=b'{"email": "a@example.com", "password": "')
        r = await client.post(
            "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
        )
        assert_413(r)
        assert body.read <= MiB // body.size + 2

    async def test_json_submission_is_limited_too(self, client: httpx.AsyncClient) -> None:
        key = await create_key(client, await sign_up(client, client._transport.app))  # type: ignore[attr-defined]
        padding = {f"k{i}": "x" * 500 for i in range(2200)}  # ~1.1 MiB of metadata
        r = await client.post(
            "/api/v1/analysis",
            json={
                "agent_id": "a",
                "contact_id": "c",
                "audio_url": "https://example.com/a.wav",
                "metadata": padding,
            },
            headers={"X-API-Key": key},
        )
        assert_413(r)

    async def test_a_body_under_the_limit_is_served(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 100})
        assert r.status_code == 401


def multipart(boundary: str, name: str, filename: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="agent_id"\r\n\r\nagent\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="contact_id"\r\n\r\ncontact\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


class TestUploads:
    async def test_chunked_upload_is_cut_at_the_upload_limit(self, app_factory: Any) -> None:
        """Before: a chunked body skipped the Content-Length check, and a file part other than
        ``audio_file`` was read to its end whatever its size."""
        async with app_factory(storage={"max_upload_bytes": 50_000}) as small:
            key = await create_key(small, await sign_up(small, small._transport.app))  # type: ignore[attr-defined]
            body = Chunks(100, first=multipart("b0undary", "other_file", "x.bin"))  # ~6 MiB
            r = await small.post(
                "/api/v1/analysis",
                content=body,
                headers={"X-API-Key": key, "Content-Type": "multipart/form-data; boundary=b0undary"},
            )
        assert_413(r)
        # The limit for an upload is the file limit plus 1 MiB for the form around it.
        assert body.read <= (50_000 + MiB) // body.size + 2

    async def test_an_upload_over_one_mebibyte_is_accepted(self, client: httpx.AsyncClient) -> None:
        key = await create_key(client, await sign_up(client, client._transport.app), "test")  # type: ignore[attr-defined]
        audio = WAV + b"\x00" * (2 * MiB)  # trailing bytes after the WAV data are ignored by decoders
        r = await client.post(
            "/api/v1/analysis",
            data={"agent_id": "a", "contact_id": "c"},
            files={"audio_file": ("call.wav", audio, "audio/wav")},
            headers={"X-API-Key": key},
        )
        assert r.status_code != 413, r.text
