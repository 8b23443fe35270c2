"""Audio in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …): URIs ``s3://<bucket>/<object key>``.

``save`` streams into a local copy first (the size limit is enforced while streaming, exactly as for
local storage), then uploads it (boto3's managed upload: multipart for large files). The local copy
serves probing and transcription on this node; another node fetches the object on first use.
Credentials come from boto3's usual chain (AWS_* environment variables, profile, instance role).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from callcov.config import Settings
from callcov.storage.objects import InvalidStorageKey, LocalStorage, StoredAudio, validate_key

SCHEME = "s3://"


class S3Storage:
    def __init__(
        self, bucket: str, cache_dir: Path, *, prefix: str = "", client: Any = None, **client_args: Any
    ):
        if not bucket:
            raise ValueError("CALLCOV_STORAGE__S3_BUCKET is required for the s3 storage backend")
        self.bucket = bucket
        self.prefix = prefix
        self.cache = LocalStorage(cache_dir)
        self._client = client
        self._client_args = {k: v for k, v in client_args.items() if v}

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        storage = settings.storage
        return cls(
            storage.s3_bucket,
            settings.storage_root,
            prefix=storage.s3_prefix,
            endpoint_url=storage.s3_endpoint_url,
            region_name=storage.s3_region,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", **self._client_args)
        return self._client

    def _key_of(self, uri: str) -> str:
        if not uri.startswith(f"{SCHEME}{self.bucket}/{self.prefix}"):
            raise InvalidStorageKey(f"not an object of this bucket and prefix: {uri!r}")
        return validate_key(uri[len(f"{SCHEME}{self.bucket}/{self.prefix}") :])

    def path_of(self, uri: str) -> Path:
        return self.cache.path_of("local:" + self._key_of(uri))

    async def save(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredAudio:
        local = await self.cache.save(key, chunks, max_bytes=max_bytes)
        try:
            await asyncio.to_thread(self.client.upload_file, str(local.path), self.bucket, self.prefix + key)
        except BaseException:
            await self.cache.delete(local.uri)
            raise
        uri = f"{SCHEME}{self.bucket}/{self.prefix}{key}"
        return StoredAudio(uri=uri, path=local.path, size_bytes=local.size_bytes, sha256=local.sha256)

    async def fetch(self, uri: str) -> Path:
        path = self.path_of(uri)
        if not path.is_file():
            partial = path.with_name(f".tmp-fetch-{path.name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                await asyncio.to_thread(
                    self.client.download_file, self.bucket, self.prefix + self._key_of(uri), str(partial)
                )
            except Exception as exc:
                if _is_missing(exc):
                    raise FileNotFoundError(uri) from exc
                raise  # a transient store failure: the job is retried
            partial.replace(path)
        return path

    async def delete(self, uri: str) -> None:
        await asyncio.to_thread(
            self.client.delete_object, Bucket=self.bucket, Key=self.prefix + self._key_of(uri)
        )
        await self.cache.delete("local:" + self._key_of(uri))


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}
