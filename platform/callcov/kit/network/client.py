"""The pinned client: requests go to an address that was checked, never to a name resolved again.

The original ``Host`` header is sent and, for https, the original name is the SNI and certificate
hostname. Redirects are followed by hand (:func:`open_following`), each hop resolved and checked again.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from callcov.kit.network.dns import ResolvedUrl, resolve
from callcov.kit.network.errors import FetchFailed, UrlRefused
from callcov.kit.network.policy import parse_allow

USER_AGENT = "CallCov/1 (+https://callcov.com)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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
        raise FetchFailed(
            f"Could not connect to {resolved.host}: {error}", details={"host": resolved.host}
        ) from None


async def open_following(
    url: str,
    *,
    allow: Sequence[str],
    deadline: float,
    max_redirects: int = 5,
    verify: ssl.SSLContext | bool = True,
) -> tuple[httpx.AsyncClient, httpx.Response, str]:
    """GET ``url``, following redirects by hand and checking every hop, by ``deadline`` (event loop
    time). Returns the client, the streaming non-redirect response (close both) and the final URL.

    Raises UrlRefused (also for a refused or unresolvable redirect target), HostNotResolved (the URL's
    own host), FetchFailed (no connection, redirect without Location, more than ``max_redirects``), and
    lets TimeoutError and ``httpx.HTTPError`` through.
    """
    networks = parse_allow(allow)
    current = url
    for hop in range(max_redirects + 1):
        try:
            resolved = await resolve(current, networks, max(deadline - asyncio.get_running_loop().time(), 0))
        except UrlRefused as exc:  # HostNotResolved too
            if hop == 0:
                raise
            raise UrlRefused(f"Redirected to a URL that is not allowed: {exc.message}") from None
        client, response = await _open_hop(resolved, deadline, verify)
        if response.status_code not in REDIRECT_STATUSES:
            return client, response, resolved.url
        location = response.headers.get("location")
        await response.aclose()
        await client.aclose()
        if not location:
            raise FetchFailed("The server answered a redirect without a Location header")
        try:
            current = str(httpx.URL(resolved.url).join(location))
        except (httpx.InvalidURL, ValueError):
            raise UrlRefused("Redirected to a malformed URL") from None
    raise FetchFailed(
        f"Too many redirects (more than {max_redirects})", details={"max_redirects": max_redirects}
    )
