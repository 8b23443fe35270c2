"""Spool a request body (memory, then disk) with a size limit, and fingerprint it.

The fingerprint covers the method, the path, the query string and the body. It ignores what a
client library may change between two sends of the same request: the order of the query
parameters, the multipart boundary, and the key order and spacing of a JSON body.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from typing import IO
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import Receive

CHUNK = 64 * 1024
JSON_CANONICAL_MAX = 1024 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


async def spool_body(receive: Receive, *, max_bytes: int, memory_bytes: int) -> tuple[IO[bytes], int]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=memory_bytes)  # noqa: SIM115
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            spool.close()
            raise BodyTooLarge(max_bytes)
        spool.write(chunk)
        more = message.get("more_body", False)
    spool.seek(0)
    return spool, size


def _boundary(content_type: str) -> bytes | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode()
    return None


def normalized_query(query_string: bytes) -> str:
    """The query parameters sorted (``b=2&a=1`` and ``a=1&b=2`` are one request)."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return urlencode(sorted(pairs))


def fingerprint(
    method: str, path: str, query_string: bytes, content_type: str, spool: IO[bytes], size: int
) -> str:
    query = normalized_query(query_string)
    digest = hashlib.sha256(f"{method} {path}{'?' + query if query else ''}\n".encode())
    media = content_type.split(";")[0].strip().lower()
    spool.seek(0)
    if media == "application/json" and size <= JSON_CANONICAL_MAX:
        raw = spool.read()
        try:
            digest.update(orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS))
        except orjson.JSONDecodeError:
            digest.update(raw)
    else:
        boundary = _boundary(content_type) if media == "multipart/form-data" else None
        _hash_stream(digest, spool, boundary)
    spool.seek(0)
    return digest.hexdigest()


def _hash_stream(digest: hashlib._Hash, spool: IO[bytes], boundary: bytes | None) -> None:
    """Hash the stream with every occurrence of ``boundary`` removed, even across chunk edges."""
    keep = len(boundary) - 1 if boundary else 0
    tail = b""
    while chunk := spool.read(CHUNK):
        data = tail + chunk
        if boundary:
            data = data.replace(boundary, b"")
            tail, data = (data[-keep:], data[:-keep]) if keep and len(data) > keep else (data, b"")
        digest.update(data)
    digest.update(tail.replace(boundary, b"") if boundary else tail)


async def replay_receive(spool: IO[bytes], receive: Receive) -> AsyncIterator[dict[str, object]]:
    """Messages that hand the spooled body to the app, then whatever the client sends next."""
    spool.seek(0)
    chunk = spool.read(CHUNK)
    while True:
        following = spool.read(CHUNK)
        yield {"type": "http.request", "body": chunk, "more_body": bool(following)}
        if not following:
            break
        chunk = following
    while True:
        yield dict(await receive())
