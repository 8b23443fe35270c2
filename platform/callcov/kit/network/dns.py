"""Resolving a URL's host once, and checking every address it resolves to.

Resolution goes through the running loop's ``getaddrinfo`` (the hook tests replace to fake DNS). A URL
checked now and fetched later (a webhook) must be checked again at fetch time: DNS can change in between.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from callcov.kit.network.errors import HostNotResolved
from callcov.kit.network.policy import Network, check_addresses, parse_allow, parse_url

DEFAULT_DNS_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ResolvedUrl:
    """A checked URL: its host (ASCII, IDNA-encoded) and port, and every address the host resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


async def resolve(url: str, allow: Sequence[Network], timeout_s: float) -> ResolvedUrl:
    """Parse, resolve and check ``url``: UrlRefused, HostNotResolved, or TimeoutError when resolution
    takes more than ``timeout_s``."""
    parsed = parse_url(url)
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
    check_addresses(host, addresses, allow)
    return ResolvedUrl(url=str(parsed), scheme=parsed.scheme, host=host, port=port, addresses=addresses)


async def resolve_checked(
    url: str, *, allow: Sequence[str] = (), timeout_s: float = DEFAULT_DNS_TIMEOUT_S
) -> ResolvedUrl:
    """Parse and resolve ``url``: UrlRefused unless every address is public or in ``allow`` (CIDR
    strings), HostNotResolved when the host does not resolve within ``timeout_s``."""
    try:
        return await resolve(url, parse_allow(allow), timeout_s)
    except TimeoutError:
        raise HostNotResolved("The host of the URL could not be resolved in time") from None


async def check_url(
    url: str, *, allow: Sequence[str] = (), timeout_s: float = DEFAULT_DNS_TIMEOUT_S
) -> ResolvedUrl:
    """Validate a URL given now and fetched later (a webhook): resolve and check, nothing sent."""
    return await resolve_checked(url, allow=allow, timeout_s=timeout_s)
