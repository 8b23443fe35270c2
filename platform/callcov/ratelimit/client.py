"""The client address an unauthenticated request is counted against.

``X-Forwarded-For`` is read only when the direct peer is a configured trusted proxy, and then from
the right: each trusted hop is skipped, and the first address a trusted proxy did not add is the
client (the left-most entries are whatever the client sent, so they are never believed). IPv6
clients are counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.types import Scope

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def _parse(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ip_address(value)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def _bucket(address: Address) -> str:
    if isinstance(address, IPv6Address):
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def _forwarded_for(scope: Scope) -> list[str]:
    hops: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            hops.extend(value.decode("latin-1").split(","))
    return hops


def client_address(scope: Scope, proxies: Sequence[Network]) -> str:
    client = scope.get("client")
    peer = _parse(client[0]) if client else None
    if peer is None:
        return "unknown"
    address = peer
    if _trusted(peer, proxies):
        for hop in reversed(_forwarded_for(scope)):
            parsed = _parse(hop)
            if parsed is None:  # garbage: stop at the last hop a trusted proxy vouched for
                break
            address = parsed
            if not _trusted(parsed, proxies):
                break
    return _bucket(address)
