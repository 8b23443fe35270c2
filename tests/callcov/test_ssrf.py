"""SSRF-safe outbound HTTP: address classification, URL checks, and downloads from loopback servers.

Only loopback is ever contacted: other addresses are literals that getaddrinfo answers without any
lookup, and are refused before a connection is made.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from conftest import FakeDns

from callcov.config import NetworkSettings
from callcov.kit.network.client import pinned_request
from callcov.kit.network.dns import ResolvedUrl, check_url, resolve_checked
from callcov.kit.network.errors import HostNotResolved, UrlRefused
from callcov.kit.network.policy import is_public_address
from callcov.webhooks.errors import InvalidWebhookUrl
from callcov.webhooks.sender import check_webhook_url

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
    with pytest.raises(UrlRefused):
        await resolve_checked(url)
    with pytest.raises(UrlRefused):
        await check_url(url)
    with pytest.raises(InvalidWebhookUrl) as caught:  # as the webhooks domain reports it
        await check_webhook_url(url, NetworkSettings())
    assert caught.value.code == "invalid_url" and caught.value.status_code == 400


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
    with pytest.raises(UrlRefused) as caught:
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
    with pytest.raises(UrlRefused):
        await resolve_checked("http://127.0.0.2/", allow=LOOPBACK)
    with pytest.raises(ValueError):
        await resolve_checked("http://127.0.0.1/", allow=["not-a-network"])


@pytest.mark.asyncio
async def test_every_resolved_address_must_pass(fake_dns: Callable[..., FakeDns]) -> None:
    fake_dns({"mixed.example.test": ["8.8.8.8", "10.0.0.7"], "public.example.test": ["8.8.8.8", "1.1.1.1"]})
    with pytest.raises(UrlRefused) as caught:
        await resolve_checked("http://mixed.example.test/")
    assert caught.value.details == {"host": "mixed.example.test"}
    resolved = await resolve_checked("http://public.example.test/")
    assert resolved.addresses == ("8.8.8.8", "1.1.1.1")
    with pytest.raises(HostNotResolved, match="could not be resolved"):
        await resolve_checked("http://missing.example.test/")


def test_pinned_request_keeps_the_name() -> None:
    resolved = ResolvedUrl(
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
        ResolvedUrl("http://example.com/a", "http", "example.com", 80, ("2606:2800::1",)), "2606:2800::1"
    )
    assert str(v6.url) == "http://[2606:2800::1]/a"
    assert v6.headers["host"] == "example.com" and "sni_hostname" not in v6.extensions
