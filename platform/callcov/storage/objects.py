"""Where uploaded and downloaded audio is kept: a Storage protocol and the local-disk implementation.

``save`` streams: the size limit is enforced chunk by chunk (413 ``file_too_large`` as soon as it is
passed, the partial file removed) and the body is never held in memory whole. An S3-compatible store
implements the same protocol (``storage/s3.py``: ``s3://bucket/key``, with a local copy).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from callcov.config import Settings
from callcov.errors import FileTooLarge

LOCAL_SCHEME = "local:"
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_KEY_LENGTH = 512
_WRITE_BUFFER = 1024 * 1024
_TMP_PREFIX = ".tmp-"


class InvalidStorageKey(ValueError):
    """A key that could name a file outside the storage root (or is otherwise malformed)."""


@dataclass(frozen=True)
class StoredAudio:
    """A saved object: its URI (to store in the database), local path, size and SHA-256 (hex)."""

    uri: str
    path: Path
    size_bytes: int
    sha256: str


@runtime_checkable
class Storage(Protocol):
    """Keeps audio objects under keys such as ``"<account>/<analysis>.audio"``."""

    async def save(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredAudio:
        """Stream ``chunks`` into the object ``key``; FileTooLarge once more than ``max_bytes`` arrive."""
        ...

    def path_of(self, uri: str) -> Path:
        """Where the object of ``uri`` is (or would be) kept on this node."""
        ...

    async def fetch(self, uri: str) -> Path:
        """A local file holding the object of ``uri``, fetched first if this node has no copy;
        FileNotFoundError when the store no longer has it."""
        ...

    async def delete(self, uri: str) -> None:
        """Remove the object of ``uri``; no error if it is already gone."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is ``segment(/segment)*`` of safe characters, else raise InvalidStorageKey."""
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise InvalidStorageKey("storage key must be 1-512 characters")
    for segment in key.split("/"):
        if not _KEY_SEGMENT.fullmatch(segment) or segment.startswith(_TMP_PREFIX):
            raise InvalidStorageKey(f"invalid storage key segment: {segment!r}")
    return key


class LocalStorage:
    """Objects as files under ``root``; URIs are ``local:<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path_for_key(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidStorageKey("storage key escapes the storage root")
        return path

    def path_of(self, uri: str) -> Path:
        """The file of a ``local:<key>`` URI (raises InvalidStorageKey for other URIs)."""
        if not uri.startswith(LOCAL_SCHEME):
            raise InvalidStorageKey(f"not a local storage URI: {uri!r}")
        return self._path_for_key(uri[len(LOCAL_SCHEME) :])

    async def save(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredAudio:
        """Stream into a temporary file in ``root``, then rename it to the key's path (replacing it)."""
        final = self._path_for_key(key)
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        tmp = self.root / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        file = await asyncio.to_thread(tmp.open, "xb")
        try:
            size, digest = await _copy(chunks, file, max_bytes)
            await asyncio.to_thread(_finish, file, tmp, final)
        except BaseException:  # also on cancellation: never leave a partial file behind
            _discard(file, tmp)
            raise
        return StoredAudio(uri=LOCAL_SCHEME + key, path=final, size_bytes=size, sha256=digest)

    async def fetch(self, uri: str) -> Path:
        path = self.path_of(uri)
        if not path.is_file():
            raise FileNotFoundError(uri)
        return path

    async def delete(self, uri: str) -> None:
        """Remove the file of ``uri`` if it exists."""
        path = self.path_of(uri)
        await asyncio.to_thread(path.unlink, missing_ok=True)


async def _copy(chunks: AsyncIterator[bytes], file: BinaryIO, max_bytes: int) -> tuple[int, str]:
    """Write ``chunks`` in ~1 MiB batches; (size, sha256 hex). FileTooLarge past ``max_bytes``."""
    digest = hashlib.sha256()
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        size += len(chunk)
        if size > max_bytes:
            raise FileTooLarge(max_size_bytes=max_bytes)
        digest.update(chunk)
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= _WRITE_BUFFER:
            await asyncio.to_thread(file.write, b"".join(pending))
            pending, pending_size = [], 0
    if pending:
        await asyncio.to_thread(file.write, b"".join(pending))
    return size, digest.hexdigest()


def _finish(file: BinaryIO, tmp: Path, final: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def _discard(file: BinaryIO, tmp: Path) -> None:
    file.close()
    tmp.unlink(missing_ok=True)


def build_storage(settings: Settings) -> Storage:
    """The configured store: local disk (default) or an S3-compatible bucket."""
    if settings.storage.backend == "s3":
        from callcov.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.storage_root)
