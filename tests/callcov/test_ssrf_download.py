"""SSRF-safe downloads from loopback servers: allow-list, pinning, redirects, limits, TLS names.

Only loopback is ever contacted: other addresses are literals that getaddrinfo answers without any
lookup, and are refused before a connection is made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import FakeDns

from callcov.analyses.download import open_download, stream_download
from callcov.analyses.errors import AudioDownloadFailed, FileTooLarge, InvalidAudioUrl

LOOPBACK = ["127.0.0.1/32"]
BODY = bytes(range(256)) * 40  # 10,240 bytes


# --- a loopback HTTP server -------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    scheme: str = "http"
    hosts: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _response(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _respond(server: Server, path: str, writer: asyncio.StreamWriter) -> None:
    port = server.port
    redirects = {
        "/redirect-self": "/audio",
        "/redirect-absolute": f"http://127.0.0.1:{port}/audio",
        "/redirect-other": f"http://127.0.0.2:{port}/audio",
        "/redirect-metadata": "http://169.254.169.254/latest/meta-data/",
        "/redirect-ftp": "ftp://127.0.0.1/audio",
        "/loop": "/loop",
    }
    if path in redirects:
        writer.write(_response("302 Found", {"Location": redirects[path], "Content-Length": "0"}))
    elif path.startswith("/chain/"):
        hops = int(path.rsplit("/", 1)[1])
        target = f"/chain/{hops - 1}" if hops else "/audio"
        writer.write(_response("301 Moved Permanently", {"Location": target, "Content-Length": "0"}))
    elif path == "/audio":
        writer.write(
            _response("200 OK", {"Content-Length": str(len(BODY)), "Content-Type": "audio/wav"}, BODY)
        )
    elif path == "/chunked":  # no Content-Length: the limit must be enforced while streaming
        writer.write(_response("200 OK", {"Transfer-Encoding": "chunked"}))
        for _ in range(64):
            writer.write(b"1000\r\n" + b"c" * 4096 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
    elif path == "/declared-big":
        writer.write(_response("200 OK", {"Content-Length": "10000000"}))
    elif path == "/no-location":
        writer.write(_response("302 Found", {"Content-Length": "0"}))
    elif path == "/slow-headers":
        await asyncio.sleep(2)
    elif path == "/slow-body":
        writer.write(_response("200 OK", {"Content-Length": "1000"}, b"x" * 10))
        await writer.drain()
        await asyncio.sleep(2)
    elif path == "/short-body":
        writer.write(_response("200 OK", {"Content-Length": "1000"}, b"x" * 10))
    else:
        writer.write(_response("404 Not Found", {"Content-Length": "9"}, b"not found"))


@asynccontextmanager
async def serve(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    state = Server(port=0, scheme="https" if ssl_context else "http")
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
            state.paths.append(head[0].split(" ")[1])
            state.hosts.append(headers.get("Host", headers.get("host", "")))
            await _respond(state, state.paths[-1], writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest_asyncio.fixture(loop_scope="session")
async def http_server() -> AsyncIterator[Server]:
    async with serve() as server:
        yield server


async def _download(url: str, **kwargs: Any) -> bytes:
    options: dict[str, Any] = {"allow": LOOPBACK, "max_bytes": 1_000_000, "timeout_s": 5.0} | kwargs
    async with aclosing(stream_download(url, **options)) as chunks:
        return b"".join([chunk async for chunk in chunks])


@pytest.mark.asyncio
async def test_download_from_an_allowed_server(http_server: Server) -> None:
    assert await _download(http_server.url("/audio")) == BODY
    assert http_server.hosts[-1] == f"127.0.0.1:{http_server.port}"
    async with open_download(
        http_server.url("/audio"), allow=LOOPBACK, max_bytes=len(BODY), timeout_s=5
    ) as download:
        assert (download.status_code, download.content_length) == (200, len(BODY))
        assert download.headers["content-type"] == "audio/wav"
        assert b"".join([c async for c in download.chunks]) == BODY


@pytest.mark.asyncio
async def test_loopback_is_refused_without_the_allow_list(http_server: Server) -> None:
    before = len(http_server.paths)
    with pytest.raises(InvalidAudioUrl):
        await _download(http_server.url("/audio"), allow=())
    with pytest.raises(InvalidAudioUrl):
        await _download(http_server.url("/audio", host="2130706433"), allow=())
    assert len(http_server.paths) == before  # never contacted


@pytest.mark.asyncio
async def test_the_checked_address_is_the_one_contacted(
    http_server: Server, fake_dns: Callable[..., FakeDns]
) -> None:
    dns = fake_dns({"audio.example.test": ["127.0.0.1"]})
    assert await _download(http_server.url("/audio", host="audio.example.test")) == BODY
    assert http_server.hosts[-1] == f"audio.example.test:{http_server.port}"
    assert dns.queries.count("audio.example.test") == 1  # the HTTP client never resolved it again


@pytest.mark.asyncio
async def test_redirects(http_server: Server) -> None:
    assert await _download(http_server.url("/redirect-self")) == BODY
    assert await _download(http_server.url("/redirect-absolute")) == BODY
    async with open_download(
        http_server.url("/chain/4"), allow=LOOPBACK, max_bytes=10**6, timeout_s=5
    ) as download:
        assert download.url == http_server.url("/audio")
    for path in ("/redirect-other", "/redirect-metadata", "/redirect-ftp"):
        with pytest.raises(InvalidAudioUrl, match="Redirected"):
            await _download(http_server.url(path))
    assert not any(host.startswith(("127.0.0.2", "169.254")) for host in http_server.hosts)


@pytest.mark.asyncio
async def test_too_many_redirects(http_server: Server) -> None:
    with pytest.raises(AudioDownloadFailed, match="Too many redirects") as caught:
        await _download(http_server.url("/loop"))
    assert caught.value.code == "audio_download_failed" and caught.value.status_code == 400
    with pytest.raises(AudioDownloadFailed, match="Too many redirects"):
        await _download(http_server.url("/chain/5"), max_redirects=5)
    with pytest.raises(AudioDownloadFailed, match="Location"):
        await _download(http_server.url("/no-location"))


@pytest.mark.asyncio
async def test_size_limit(http_server: Server) -> None:
    with pytest.raises(FileTooLarge) as caught:
        await _download(http_server.url("/audio"), max_bytes=len(BODY) - 1)
    assert caught.value.details == {"max_size_bytes": len(BODY) - 1}
    with pytest.raises(FileTooLarge):
        await _download(http_server.url("/declared-big"))
    with pytest.raises(FileTooLarge):
        await _download(http_server.url("/chunked"), max_bytes=100_000)
    assert len(await _download(http_server.url("/chunked"), max_bytes=64 * 4096)) == 64 * 4096


@pytest.mark.asyncio
async def test_http_errors_and_broken_bodies(http_server: Server) -> None:
    with pytest.raises(AudioDownloadFailed) as caught:
        await _download(http_server.url("/missing"))
    assert caught.value.details == {"status_code": 404}
    with pytest.raises(AudioDownloadFailed, match="interrupted"):
        await _download(http_server.url("/short-body"))


@pytest.mark.asyncio
async def test_timeouts(http_server: Server) -> None:
    loop = asyncio.get_running_loop()
    for path in ("/slow-headers", "/slow-body"):
        started = loop.time()
        with pytest.raises(AudioDownloadFailed, match="did not finish") as caught:
            await _download(http_server.url(path), timeout_s=0.3)
        assert caught.value.details == {"timeout_s": 0.3}
        assert loop.time() - started < 1.5


@pytest.mark.asyncio
async def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AudioDownloadFailed, match="Could not connect"):
        await _download(f"http://127.0.0.1:{port}/audio")


# --- https: SNI and the certificate are checked against the URL's name, not the pinned address --------


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.asyncio
async def test_https_uses_the_url_name_for_sni_and_the_certificate(
    tmp_path: Path, fake_dns: Callable[..., FakeDns]
) -> None:
    pytest.importorskip("cryptography")
    cert, key = _certificate(tmp_path, "audio.example.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    seen_sni: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, name, _ctx: seen_sni.append(name)  # type: ignore[assignment,func-returns-value]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    fake_dns({"audio.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    async with serve(server_ctx) as server:
        body = await _download(server.url("/audio", host="audio.example.test"), verify=client_ctx)
        assert body == BODY
        assert seen_sni == ["audio.example.test"]
        assert server.hosts == [f"audio.example.test:{server.port}"]
        with pytest.raises(AudioDownloadFailed, match="Could not connect"):  # the certificate doesn't match
            await _download(server.url("/audio", host="other.example.test"), verify=client_ctx)
        assert seen_sni[-1] == "other.example.test"


@pytest.mark.asyncio
async def test_download_into_storage(http_server: Server, tmp_path: Path) -> None:
    from callcov.storage.objects import LocalStorage

    storage = LocalStorage(tmp_path)
    options: dict[str, Any] = {"allow": LOOPBACK, "timeout_s": 5.0}
    stored = await storage.save(
        "acct/a.audio",
        stream_download(http_server.url("/audio"), max_bytes=10**6, **options),
        max_bytes=10**6,
    )
    assert stored.path.read_bytes() == BODY
    with pytest.raises(FileTooLarge):
        await storage.save(
            "acct/b.audio",
            stream_download(http_server.url("/chunked"), max_bytes=50_000, **options),
            max_bytes=10**6,
        )
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.audio"]
