"""One webhook POST: the URL is checked against SSRF again at send time (DNS may have changed since
submission), the connection goes to the checked address, redirects are not followed, and the whole
attempt (resolution, connection, response) is bounded by one timeout."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from callcov.config import NetworkSettings
from callcov.kit.network.client import open_pinned
from callcov.kit.network.dns import ResolvedUrl, check_url, resolve_checked
from callcov.kit.network.errors import HostNotResolved, UrlRefused
from callcov.webhooks.errors import InvalidWebhookUrl

EXCERPT_BYTES = 8192


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None = None
    error: str | None = None
    # The URL is not allowed (it resolves to a private address): never worth retrying.
    refused: bool = False
    # A 429's or 503's Retry-After in seconds (the HTTP-date form is ignored).
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def check_webhook_url(url: str, network: NetworkSettings) -> None:
    """Check a ``webhook_url`` given now (at submission, or when it is set): InvalidWebhookUrl unless
    it is http(s) and every address it resolves to is allowed. :func:`post` checks it again."""
    try:
        await check_url(url, allow=network.url_allow, timeout_s=network.dns_timeout_s)
    except UrlRefused as exc:
        raise InvalidWebhookUrl(
            f"The webhook_url is not allowed: {exc.message}", details=exc.details
        ) from exc


async def _read_excerpt(response: httpx.Response, max_chars: int) -> str:
    received = bytearray()
    async for chunk in response.aiter_bytes():
        received.extend(chunk)
        if len(received) >= EXCERPT_BYTES:
            break
    return received.decode("utf-8", errors="replace")[:max_chars]


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


async def _send(
    resolved: ResolvedUrl, body: bytes, headers: Mapping[str, str], deadline: float, max_chars: int
) -> SendResult:
    client, response = await open_pinned(resolved, deadline, method="POST", content=body, headers=headers)
    try:
        excerpt = await _read_excerpt(response, max_chars)
    finally:
        await response.aclose()
        await client.aclose()
    return SendResult(response.status_code, 0, excerpt, retry_after_s=retry_after(response))


async def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow: Sequence[str],
    timeout_s: float,
    excerpt_chars: int,
) -> SendResult:
    """POST ``body`` to ``url``; never raises for network trouble, it is reported in the result."""
    started = time.monotonic()
    deadline = asyncio.get_running_loop().time() + timeout_s  # one bound for the whole attempt

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout_at(deadline):
            resolved = await resolve_checked(url, allow=allow, timeout_s=timeout_s)
            result = await _send(resolved, body, headers, deadline, excerpt_chars)
    except HostNotResolved as exc:
        return SendResult(None, elapsed_ms(), error=exc.message)
    except UrlRefused as exc:
        return SendResult(None, elapsed_ms(), error=f"Refused: {exc.message}", refused=True)
    except (TimeoutError, httpx.TimeoutException):
        return SendResult(None, elapsed_ms(), error=f"No response within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return SendResult(None, elapsed_ms(), error=f"Connection failed: {reason}"[:1000])
    return dataclasses.replace(result, duration_ms=elapsed_ms())
