"""SSRF-safe outbound HTTP: address classification, URL checks, and downloads from loopback servers.

Only loopback is ever contacted: other addresses are literals that getaddrinfo answers without any
lookup, and are refused before a connection is made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from callcov.analyses.errors import AudioDownloadFailed, FileTooLarge, InvalidAudioUrl
from callcov.kit import ssrf
from callcov.kit.ssrf import (
    check_url,
    is_public_address,
    open_download,
    pinned_request,
    resolve_checked,
    stream_download,
)

LOOPBACK = ["127.0.0.1/32"]
BODY = bytes(range(256)) * 40  # 10,240 bytes


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("2a00:1450:4001:80b::200e", True),
        ("::ffff:8.8.8.8", True),
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("10.0.0.1", False),
        ("10.255.255.255", False),
        ("172.16.0.1", False),
        ("172.31.255.254", False),
        ("172.32.0.1", True),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("0.0.0.0", False),
        ("0.1.2.3", False),
        ("169.254.169.254", False),
        ("169.254.0.1", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("100.100.100.200", False),
        ("100.128.0.1", True),
        ("192.0.0.8", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("198.51.100.7", False),
        ("203.0.113.9", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("[fe80::1]", False),
        ("fc00::1", False),
        ("fd12:3456:789a::1", False),
        ("fd00:ec2::254", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:7f00:1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::a00:1", False),
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("2002:c0a8:0101::1", False),  # 6to4 of 192.168.1.1
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("64:ff9b:1::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("not an ip", False),
        ("", False),
        ("2130706433", False),  # not an address literal at all: not public
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_is_public_address_takes_ip_objects() -> None:
    assert is_public_address(ipaddress.ip_address("8.8.4.4"))
    assert not is_public_address(ipaddress.ip_address("::1"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/audio.wav",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.0.0.1/",
        "http://017700000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://10.1.2.3/",
        "http://192.168.0.10:9000/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://100.64.1.1/",
        "https://224.0.0.251/",
    ],
)
@pytest.mark.asyncio
async def test_refused_addresses(url: str) -> None:
    with pytest.raises(InvalidAudioUrl) as caught:
        await resolve_checked(url)
    assert caught.value.code == "invalid_url" and caught.value.status_code == 400
    with pytest.raises(InvalidAudioUrl):
        await check_url(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://8.8.8.8/a.mp3", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("gopher://8.8.8.8:70/", "http and https"),
        ("javascript:alert(1)", "http and https"),
        ("//8.8.8.8/a.mp3", "http and https"),
        ("http:///path", "no host"),
        ("http://user:pass@8.8.8.8/", "credentials"),
        ("http://8.8.8.8:99999/", "malformed"),
        ("http://[::1/", "malformed"),
        ("", "http and https"),
    ],
)
@pytest.mark.asyncio
async def test_malformed_urls(url: str, why: str) -> None:
    with pytest.raises(InvalidAudioUrl) as caught:
        await resolve_checked(url)
    assert why in caught.value.message


@pytest.mark.asyncio
async def test_public_literals_pass_without_any_traffic() -> None:
    resolved = await resolve_checked("https://8.8.8.8/a.mp3?sig=1")
    assert (resolved.scheme, resolved.host, resolved.port, resolved.addresses) == (
        "https",
        "8.8.8.8",
        443,
        ("8.8.8.8",),
    )
    resolved = await check_url("http://[2606:4700:4700::1111]:8080/x")
    assert resolved.addresses == ("2606:4700:4700::1111",) and resolved.port == 8080


@pytest.mark.asyncio
async def test_allow_list_lets_loopback_through() -> None:
    resolved = await resolve_checked("http://localhost:8000/a", allow=["127.0.0.0/8", "::1/128"])
    assert resolved.host == "localhost"
    assert set(resolved.addresses) <= {"127.0.0.1", "::1"}
    assert (await resolve_checked("http://2130706433/", allow=["127.0.0.0/8"])).addresses == ("127.0.0.1",)
    assert (await resolve_checked("http://[::ffff:127.0.0.1]/", allow=["127.0.0.0/8"])).addresses
    with pytest.raises(InvalidAudioUrl):
        await resolve_checked("http://127.0.0.2/", allow=LOOPBACK)
    with pytest.raises(ValueError):
        await resolve_checked("http://127.0.0.1/", allow=["not-a-network"])


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


@pytest.mark.asyncio
async def test_every_resolved_address_must_pass(fake_dns: Callable[..., FakeDns]) -> None:
    fake_dns({"mixed.example.test": ["8.8.8.8", "10.0.0.7"], "public.example.test": ["8.8.8.8", "1.1.1.1"]})
    with pytest.raises(InvalidAudioUrl) as caught:
        await resolve_checked("http://mixed.example.test/")
    assert caught.value.details == {"host": "mixed.example.test"}
    resolved = await resolve_checked("http://public.example.test/")
    assert resolved.addresses == ("8.8.8.8", "1.1.1.1")
    with pytest.raises(InvalidAudioUrl, match="could not be resolved"):
        await resolve_checked("http://missing.example.test/")


def test_pinned_request_keeps_the_name() -> None:
    resolved = ssrf.ResolvedUrl(
        url="https://audio.example.com:8443/calls/1.mp3?sig=abc",
        scheme="https",
        host="audio.example.com",
        port=8443,
        addresses=("93.184.216.34",),
    )
    request = pinned_request(resolved, "93.184.216.34")
    assert str(request.url) == "https://93.184.216.34:8443/calls/1.mp3?sig=abc"
    assert request.headers["host"] == "audio.example.com:8443"
    assert request.extensions["sni_hostname"] == "audio.example.com"
    v6 = pinned_request(
        ssrf.ResolvedUrl("http://example.com/a", "http", "example.com", 80, ("2606:2800::1",)), "2606:2800::1"
    )
    assert str(v6.url) == "http://[2606:2800::1]/a"
    assert v6.headers["host"] == "example.com" and "sni_hostname" not in v6.extensions


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
    from callcov.analyses.storage import LocalStorage

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
