"""Downloading ``audio_url``: through the network kit (every address checked, connections pinned,
redirects checked hop by hop), with the size limit and one overall deadline, and the kit's errors
reported as this domain's: InvalidAudioUrl, AudioDownloadFailed, FileTooLarge."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import httpx

from callcov.analyses.errors import AudioDownloadFailed, FileTooLarge, InvalidAudioUrl
from callcov.kit.network.client import open_following
from callcov.kit.network.errors import FetchFailed, UrlRefused


@dataclass
class Download:
    """An open response: final URL (after redirects), status, headers and the body's chunks."""

    url: str
    status_code: int
    headers: Mapping[str, str]
    content_length: int | None
    chunks: AsyncIterator[bytes]


@contextmanager
def _as_audio_errors() -> Iterator[None]:
    """The network kit's errors as this domain's (same messages and details)."""
    try:
        yield
    except UrlRefused as exc:
        raise InvalidAudioUrl(exc.message, details=exc.details) from exc
    except FetchFailed as exc:
        raise AudioDownloadFailed(exc.message, details=exc.details) from exc


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


async def _open(
    url: str,
    allow: Sequence[str],
    deadline: float,
    timeout_s: float,
    max_redirects: int,
    verify: ssl.SSLContext | bool,
) -> tuple[httpx.AsyncClient, httpx.Response, str]:
    try:
        with _as_audio_errors():
            return await open_following(
                url, allow=allow, deadline=deadline, max_redirects=max_redirects, verify=verify
            )
    except (TimeoutError, httpx.TimeoutException):
        raise _timeout_error(timeout_s) from None
    except httpx.HTTPError as exc:
        raise AudioDownloadFailed(f"The download failed: {exc}") from None


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
    client, response, final_url = await _open(url, allow, deadline, timeout_s, max_redirects, verify)
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
