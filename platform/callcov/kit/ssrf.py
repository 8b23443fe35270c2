"""Outbound HTTP to user-supplied URLs (``audio_url``, ``webhook_url``) without SSRF.

A URL is refused (InvalidAudioUrl, 400 ``invalid_url``) unless it is http(s) without credentials and
EVERY address its host resolves to is public, or lies in one of the ``allow`` networks (CIDR strings:
the setting that lets local development and tests reach loopback). Numeric spellings such as
``2130706433``, ``0x7f.0.0.1`` or ``127.1`` are resolved like any name, hence refused as loopback;
``0177.0.0.1`` is not even a valid URL host.

Downloads connect to the address that was checked (the HTTP client never resolves the name again),
send the original ``Host`` header and, for https, the original name as SNI and certificate hostname.
Redirects are followed by hand, each hop checked again. Use :func:`open_download` (an async context
manager yielding a :class:`Download`) or :func:`stream_download` (an async iterator of the body).

A webhook URL checked at submission (:func:`check_url`) must be checked again at delivery: DNS can
change in between.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from callcov.analyses.errors import AudioDownloadFailed, FileTooLarge, HostNotResolved, InvalidAudioUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

USER_AGENT = "CallCov/1 (+https://callcov.com)"
DEFAULT_DNS_TIMEOUT_S = 10.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# IANA special-purpose ranges, listed explicitly so the result doesn't depend on the Python patch level.
_BLOCKED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
        "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(ip) for ip in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The addresses to judge for ``ip``: the IPv4 address alone for an IPv4-mapped or NAT64 address,
    ``ip`` and the IPv4 address it carries for 6to4, Teredo and IPv4-compatible forms, else ``ip``."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    found: list[IPAddress] = [ip]
    if ip.sixtofour:
        found = [ip.sixtofour]  # 2002::/16 itself is public; what it tunnels to is what counts
    if ip.teredo:
        found.extend(ip.teredo)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _as_ip(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, str):
        return ipaddress.ip_address(ip.split("%", 1)[0].strip("[]"))  # drop an IPv6 zone id
    return ip


def is_public_address(ip: str | IPAddress) -> bool:
    """True for a globally routable unicast address; False for private, loopback, link-local,
    multicast, unspecified, reserved, CGNAT, unique-local, documentation and metadata addresses,
    also when wrapped in IPv6 (``::ffff:127.0.0.1``, 6to4, NAT64). Unparseable input is not public."""
    try:
        address = _as_ip(ip)
    except ValueError:
        return False
    for candidate in _embedded(address):
        if candidate in METADATA_ADDRESSES or any(candidate in net for net in _BLOCKED):
            return False
        if (
            candidate.is_private
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_multicast
            or candidate.is_unspecified
            or candidate.is_reserved
            or not candidate.is_global
        ):
            return False
    return True


def parse_allow(allow: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings (``"127.0.0.0/8"``, ``"::1/128"``) as networks; ValueError for a bad one."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in allow)


def is_allowed_address(ip: str | IPAddress, allow: Sequence[Network]) -> bool:
    """True when ``ip`` (or the IPv4 address it wraps) lies in ``allow``, or is public."""
    address = _as_ip(ip)
    if any(candidate in net for candidate in _embedded(address) for net in allow):
        return True
    return is_public_address(address)


@dataclass(frozen=True)
class ResolvedUrl:
    """A checked URL: its host (ASCII, IDNA-encoded) and port, and every address the host resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidAudioUrl(f"The URL is malformed: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidAudioUrl("Only http and https URLs are allowed", details={"scheme": parsed.scheme})
    if not parsed.raw_host:
        raise InvalidAudioUrl("The URL has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise InvalidAudioUrl("The URL is malformed: the port is out of range")
    if parsed.userinfo:
        raise InvalidAudioUrl("URLs with credentials (user:password@) are not allowed")
    return parsed


async def _resolve(url: str, allow: Sequence[Network], timeout_s: float) -> ResolvedUrl:
    """Resolve and check ``url``; TimeoutError when resolution takes more than ``timeout_s``."""
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise HostNotResolved(f"The host {host!r} could not be resolved", details={"host": host}) from None
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if not addresses:
        raise HostNotResolved(f"The host {host!r} could not be resolved", details={"host": host})
    refused = [ip for ip in addresses if not is_allowed_address(ip, allow)]
    if refused:
        raise InvalidAudioUrl(
            f"The host {host!r} resolves to a private, loopback, link-local, multicast or reserved "
            "address, which is not allowed",
            details={"host": host},
        )
    return ResolvedUrl(url=str(parsed), scheme=parsed.scheme, host=host, port=port, addresses=addresses)


async def resolve_checked(
    url: str, *, allow: Sequence[str] = (), timeout_s: float = DEFAULT_DNS_TIMEOUT_S
) -> ResolvedUrl:
    """Parse and resolve ``url``; InvalidAudioUrl unless every address is public or in ``allow``."""
    try:
        return await _resolve(url, parse_allow(allow), timeout_s)
    except TimeoutError:
        raise HostNotResolved("The host of the URL could not be resolved in time") from None


async def check_url(url: str, *, allow: Sequence[str] = ()) -> ResolvedUrl:
    """Validate a URL given now and fetched later (a webhook): resolve and check, nothing sent."""
    return await resolve_checked(url, allow=allow)


def pinned_request(
    resolved: ResolvedUrl,
    address: str,
    *,
    method: str = "GET",
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """A request for ``resolved.url`` sent to ``address``, with the original Host header and TLS name."""
    original = httpx.URL(resolved.url)
    all_headers = {
        "Host": original.netloc.decode("ascii"),
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
        **(headers or {}),
    }
    extensions: dict[str, Any] = {}
    if resolved.scheme == "https":
        extensions["sni_hostname"] = resolved.host.rstrip(".")
    return httpx.Request(
        method, original.copy_with(host=address), headers=all_headers, content=content, extensions=extensions
    )


@dataclass
class Download:
    """An open response: final URL (after redirects), status, headers and the body's chunks."""

    url: str
    status_code: int
    headers: Mapping[str, str]
    content_length: int | None
    chunks: AsyncIterator[bytes]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context, built once: building one loads the CA store (about 30 ms of CPU)."""
    return ssl.create_default_context()


def _client(verify: ssl.SSLContext | bool, deadline: float) -> httpx.AsyncClient:
    remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
    if verify is True:
        verify = tls_context()
    # One client per hop: the pool is keyed by address only, so a TLS connection made for one host
    # must never be reused for another name on the same address.
    return httpx.AsyncClient(
        verify=verify, trust_env=False, follow_redirects=False, timeout=httpx.Timeout(remaining)
    )


async def open_pinned(
    resolved: ResolvedUrl,
    deadline: float,
    verify: ssl.SSLContext | bool = True,
    *,
    method: str = "GET",
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[httpx.AsyncClient, httpx.Response]:
    """Send the request to each checked address in turn until one connects, by ``deadline`` (event
    loop time). Returns the client and the streaming response (close both); raises the last
    ``httpx.ConnectError`` when no address connects."""
    error: httpx.ConnectError | None = None
    for address in resolved.addresses:
        client = _client(verify, deadline)
        request = pinned_request(resolved, address, method=method, content=content, headers=headers)
        try:
            async with asyncio.timeout_at(deadline):
                response = await client.send(request, stream=True)
            return client, response
        except httpx.ConnectError as exc:
            error = exc
            await client.aclose()
        except BaseException:
            await client.aclose()
            raise
    assert error is not None  # a ResolvedUrl has at least one address
    raise error


async def _open_hop(
    resolved: ResolvedUrl, deadline: float, verify: ssl.SSLContext | bool
) -> tuple[httpx.AsyncClient, httpx.Response]:
    try:
        return await open_pinned(resolved, deadline, verify)
    except httpx.ConnectError as error:
        raise AudioDownloadFailed(
            f"Could not connect to {resolved.host}: {error}", details={"host": resolved.host}
        ) from None


async def _follow(
    url: str, allow: Sequence[Network], deadline: float, max_redirects: int, verify: ssl.SSLContext | bool
) -> tuple[httpx.AsyncClient, httpx.Response, str]:
    """Follow redirects by hand, checking every hop; the final (client, response, url)."""
    current = url
    for hop in range(max_redirects + 1):
        try:
            resolved = await _resolve(current, allow, max(deadline - asyncio.get_running_loop().time(), 0))
        except InvalidAudioUrl as exc:
            if hop == 0:
                raise
            raise InvalidAudioUrl(f"Redirected to a URL that is not allowed: {exc.message}") from None
        client, response = await _open_hop(resolved, deadline, verify)
        if response.status_code not in REDIRECT_STATUSES:
            return client, response, resolved.url
        location = response.headers.get("location")
        await response.aclose()
        await client.aclose()
        if not location:
            raise AudioDownloadFailed("The server answered a redirect without a Location header")
        try:
            current = str(httpx.URL(resolved.url).join(location))
        except (httpx.InvalidURL, ValueError):
            raise InvalidAudioUrl("Redirected to a malformed URL") from None
    raise AudioDownloadFailed(
        f"Too many redirects (more than {max_redirects})", details={"max_redirects": max_redirects}
    )


def _timeout_error(timeout_s: float) -> AudioDownloadFailed:
    return AudioDownloadFailed(
        f"The download did not finish within {timeout_s:g} s", details={"timeout_s": timeout_s}
    )


async def _chunks(
    response: httpx.Response, max_bytes: int, deadline: float, timeout_s: float
) -> AsyncGenerator[bytes, None]:
    """The body, with the size limit and the overall deadline enforced while it streams."""
    received = 0
    iterator = response.aiter_bytes()
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except (TimeoutError, httpx.TimeoutException):
            raise _timeout_error(timeout_s) from None
        except httpx.HTTPError as exc:
            raise AudioDownloadFailed(f"The download was interrupted: {exc}") from None
        received += len(chunk)
        if received > max_bytes:
            raise FileTooLarge(max_size_bytes=max_bytes)
        yield chunk


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


@asynccontextmanager
async def open_download(
    url: str,
    *,
    allow: Sequence[str] = (),
    max_bytes: int,
    timeout_s: float,
    max_redirects: int = 5,
    verify: ssl.SSLContext | bool = True,
) -> AsyncIterator[Download]:
    """GET ``url`` safely; yields a :class:`Download` once a non-redirect 2xx/3xx response arrived.

    ``timeout_s`` bounds the whole download (resolution, redirects, body). Raises InvalidAudioUrl,
    AudioDownloadFailed (timeout, connection error, status >= 400, too many redirects) and
    FileTooLarge (declared Content-Length or streamed body over ``max_bytes``).
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        client, response, final_url = await _follow(url, parse_allow(allow), deadline, max_redirects, verify)
    except (TimeoutError, httpx.TimeoutException):
        raise _timeout_error(timeout_s) from None
    except httpx.HTTPError as exc:
        raise AudioDownloadFailed(f"The download failed: {exc}") from None
    try:
        if response.status_code >= 400:
            raise AudioDownloadFailed(
                f"The server answered HTTP {response.status_code}",
                details={"status_code": response.status_code},
            )
        length = _content_length(response)
        if length is not None and length > max_bytes:
            raise FileTooLarge(max_size_bytes=max_bytes)
        chunks = _chunks(response, max_bytes, deadline, timeout_s)
        try:
            yield Download(final_url, response.status_code, response.headers, length, chunks)
        finally:
            await chunks.aclose()
    finally:
        await response.aclose()
        await client.aclose()


async def stream_download(
    url: str,
    *,
    allow: Sequence[str] = (),
    max_bytes: int,
    timeout_s: float,
    max_redirects: int = 5,
    verify: ssl.SSLContext | bool = True,
) -> AsyncIterator[bytes]:
    """The body of ``url`` as chunks (see :func:`open_download`); errors surface on iteration.

    Consume it fully or close it (``contextlib.aclosing``) so the connection is released promptly.
    """
    async with open_download(
        url, allow=allow, max_bytes=max_bytes, timeout_s=timeout_s, max_redirects=max_redirects, verify=verify
    ) as download:
        async for chunk in download.chunks:
            yield chunk
