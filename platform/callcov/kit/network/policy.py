"""Which URLs and addresses outbound requests may use.

An address passes when it is public, or lies in one of the ``allow`` networks (CIDR strings). Numeric
spellings such as ``2130706433``, ``0x7f.0.0.1`` or ``127.1`` resolve like any name, hence are refused as
loopback; ``0177.0.0.1`` is not even a valid URL host. A URL passes when it is http(s), has a host and a
valid port, and carries no credentials.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import httpx

from callcov.kit.network.errors import UrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

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


def check_addresses(host: str, addresses: Iterable[str], allow: Sequence[Network]) -> None:
    """UrlRefused unless every address ``host`` resolved to is allowed."""
    if any(not is_allowed_address(ip, allow) for ip in addresses):
        raise UrlRefused(
            f"The host {host!r} resolves to a private, loopback, link-local, multicast or reserved "
            "address, which is not allowed",
            details={"host": host},
        )


def parse_url(url: str) -> httpx.URL:
    """``url`` parsed; UrlRefused unless it is http(s) with a host, a valid port and no credentials."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UrlRefused(f"The URL is malformed: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise UrlRefused("Only http and https URLs are allowed", details={"scheme": parsed.scheme})
    if not parsed.raw_host:
        raise UrlRefused("The URL has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UrlRefused("The URL is malformed: the port is out of range")
    if parsed.userinfo:
        raise UrlRefused("URLs with credentials (user:password@) are not allowed")
    return parsed
