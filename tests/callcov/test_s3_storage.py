"""S3-compatible storage against a real S3 API server on loopback (moto's server, standing in for a
bucket in AWS, MinIO or Ceph): streaming save with the size limit, fetch on another node, delete, and a
submission through the API stored in the bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from conftest import S3_BUCKET, SignUp, create_key, s3_server
from test_submission import WAV, submit

from callcov.analyses.errors import FileTooLarge
from callcov.storage.s3 import S3Storage

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


def store(endpoint: str, cache: Path) -> S3Storage:
    return S3Storage(S3_BUCKET, cache, prefix="audio/", endpoint_url=endpoint)


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def objects(endpoint: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=S3_BUCKET).get("Contents", [])]
    return {key: client.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read() for key in keys}


async def test_save_fetch_elsewhere_delete(s3_endpoint: str, tmp_path: Path) -> None:
    here, there = store(s3_endpoint, tmp_path / "node-a"), store(s3_endpoint, tmp_path / "node-b")
    stored = await here.save("acct/call-1", chunks(WAV), max_bytes=len(WAV))
    assert stored.uri == f"s3://{S3_BUCKET}/audio/acct/call-1" and stored.size_bytes == len(WAV)
    assert objects(s3_endpoint)["audio/acct/call-1"] == WAV and stored.path.read_bytes() == WAV
    fetched = await there.fetch(stored.uri)  # another node: downloaded on first use
    assert fetched.read_bytes() == WAV and fetched.parent.is_relative_to(tmp_path / "node-b")
    await here.delete(stored.uri)
    assert "audio/acct/call-1" not in objects(s3_endpoint) and not stored.path.exists()
    with pytest.raises(FileNotFoundError):
        await store(s3_endpoint, tmp_path / "node-c").fetch(stored.uri)


async def test_size_limit_uploads_nothing(s3_endpoint: str, tmp_path: Path) -> None:
    with pytest.raises(FileTooLarge):
        await store(s3_endpoint, tmp_path).save("acct/too-big", chunks(WAV), max_bytes=len(WAV) - 1)
    assert "audio/acct/too-big" not in objects(s3_endpoint)
    assert not any(tmp_path.rglob("too-big"))


async def test_submission_goes_to_the_bucket(
    app_factory, s3_endpoint: str, signed_up: SignUp, client
) -> None:  # type: ignore[no-untyped-def]
    key = await create_key(client, await signed_up(), "test")
    settings = {"backend": "s3", "s3_bucket": S3_BUCKET, "s3_endpoint_url": s3_endpoint}
    async with app_factory(storage=settings) as s3_client:
        r = await submit(s3_client, key)
        assert r.status_code == 201, r.text
    assert WAV in objects(s3_endpoint).values()
