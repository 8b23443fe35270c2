"""LocalStorage: streaming saves, the size limit while streaming, and keys that can't escape the root."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from callcov.analyses.errors import FileTooLarge
from callcov.storage.objects import InvalidStorageKey, LocalStorage, Storage, StoredAudio, validate_key

pytestmark = pytest.mark.asyncio


async def _chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


async def test_save_streams_to_the_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    assert isinstance(storage, Storage)
    parts = [b"a" * 700_000, b"", b"b" * 700_000, b"c" * 10]  # crosses the 1 MiB write batch
    stored = await storage.save("acct/123.audio", _chunks(parts), max_bytes=2_000_000)
    body = b"".join(parts)
    assert stored == StoredAudio(
        uri="local:acct/123.audio",
        path=(tmp_path / "store" / "acct" / "123.audio").resolve(),
        size_bytes=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )
    assert stored.path.read_bytes() == body
    assert storage.path_of(stored.uri) == stored.path
    assert _leftovers(tmp_path / "store") == ["123.audio"]  # no temporary file left


async def test_save_exactly_at_the_limit_and_empty(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    stored = await storage.save("exact", _chunks([b"x" * 10]), max_bytes=10)
    assert stored.size_bytes == 10
    empty = await storage.save("empty", _chunks([]), max_bytes=10)
    assert empty.size_bytes == 0 and empty.path.read_bytes() == b""


async def test_limit_hit_mid_stream_removes_the_partial_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    consumed: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for index in range(10_000):  # ~640 MB if it were all read
            consumed.append(index)
            yield b"z" * 65536

    with pytest.raises(FileTooLarge) as caught:
        await storage.save("big.audio", endless(), max_bytes=3 * 1024 * 1024)
    assert caught.value.status_code == 413 and caught.value.code == "file_too_large"
    assert caught.value.details == {"max_size_bytes": 3 * 1024 * 1024}
    assert len(consumed) == 49  # stopped at the first chunk past the limit
    assert _leftovers(tmp_path) == []


async def test_a_failing_source_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"data"
        raise ConnectionResetError("upstream went away")

    with pytest.raises(ConnectionResetError):
        await storage.save("x.audio", broken(), max_bytes=100)
    assert _leftovers(tmp_path) == []


async def test_save_replaces_and_delete_removes(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.save("k", _chunks([b"old"]), max_bytes=10)
    stored = await storage.save("k", _chunks([b"new"]), max_bytes=10)
    assert stored.path.read_bytes() == b"new"
    await storage.delete(stored.uri)
    assert not stored.path.exists()
    await storage.delete(stored.uri)  # already gone: no error


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a//b",
        "a/./b",
        ".hidden",
        "..",
        "a\\..\\b",
        "a/b/",
        "x\x00y",
        "spaces not allowed",
        "a/.tmp-123",
        "%2e%2e/escape",
        "k" * 600,
    ],
)
async def test_traversal_and_odd_keys_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(InvalidStorageKey):
        await storage.save(key, _chunks([b"data"]), max_bytes=10)
    with pytest.raises(InvalidStorageKey):
        storage.path_of("local:" + key)
    assert not (tmp_path / "escape").exists()


async def test_path_of_refuses_foreign_uris_and_symlink_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    storage = LocalStorage(root)
    for uri in ("file:///etc/passwd", "s3://bucket/key", "acct/1.audio"):
        with pytest.raises(InvalidStorageKey):
            storage.path_of(uri)
    with pytest.raises(InvalidStorageKey):
        storage.path_of("local:link/outside")
    assert validate_key("acct_1/2024-01-01/call.v2.audio") == "acct_1/2024-01-01/call.v2.audio"
