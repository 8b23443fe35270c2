"""Model weights onto a node at setup, checked against the SHA-256 of a manifest.

``python -m deployments.fetch_weights fetch --manifest configs/weights.gpu.yaml --only whisper`` runs in
the setup of a new GPU node (``ray-cluster.yaml``'s ``worker_setup_commands``, the KubeRay init
container). For each file of the manifest it downloads ``<source>/<folder>/<file>`` into
``$CALLCOV_INFERENCE__MODEL_DIR/<folder>/<file>``, hashing while it writes, and keeps it only when the
digest matches. The source is the one the operator names (``--source``, else
``$CALLCOV_WEIGHTS_SOURCE``, else the manifest's ``source``): an S3-compatible bucket (``s3://bucket/prefix``;
credentials from the instance role or the standard AWS variables, ``AWS_ENDPOINT_URL`` for MinIO/Ceph),
an HTTPS mirror or model hub (``https://...``), or a local folder. Files already verified are skipped,
so a rerun costs a stat per file; a mismatch removes the download and fails with both digests.

``python -m deployments.fetch_weights manifest --group whisper DIR`` prints a manifest entry for a folder
of weights the operator has checked, to commit and to upload beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from deployments.model_assets import CHUNK, ChecksumMismatch, read_chunks, write_checked

SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WeightsError(RuntimeError):
    pass


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The folder under the model directory (and under the source), e.g. faster-whisper-large-v3-turbo.
    folder: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # File name (may contain "/") -> its SHA-256.
    files: dict[str, str] = Field(min_length=1)

    @field_validator("files")
    @classmethod
    def _checksums(cls, files: dict[str, str]) -> dict[str, str]:
        for name, digest in files.items():
            if name.startswith("/") or ".." in Path(name).parts:
                raise ValueError(f"file {name!r} must be a relative path inside the folder")
            if not SHA256.match(str(digest or "")):
                raise ValueError(
                    f"file {name!r} has no SHA-256 ({digest!r}): write the manifest with "
                    "`python -m deployments.fetch_weights manifest` from the checked weights"
                )
        return files


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = ""
    models: dict[str, ModelEntry]


def load_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate(yaml.safe_load(path.read_text()))
    except ValueError as error:
        raise WeightsError(f"{path}: {error}") from error


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in read_chunks(f):
            digest.update(chunk)
    return digest.hexdigest()


def marker_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.sha256")


def stamp(target: Path, digest: str) -> str:
    stat = target.stat()
    return f"{digest} {stat.st_size} {stat.st_mtime_ns}"


def is_verified(target: Path, digest: str, *, rehash: bool) -> bool:
    """True when ``target`` holds ``digest``: by its marker (same size and mtime), else by hashing it."""
    if not target.is_file():
        return False
    marker = marker_of(target)
    if not rehash and marker.is_file() and marker.read_text().strip() == stamp(target, digest):
        return True
    if sha256_of(target) != digest:
        return False
    marker.write_text(stamp(target, digest))
    return True


@contextmanager
def open_source(url: str) -> Iterator[IO[bytes]]:
    """A readable stream of ``url``: s3://, http(s)://, file:// or a local path."""
    if url.startswith("s3://"):
        import boto3

        bucket, _, key = url[len("s3://") :].partition("/")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield body
        finally:
            body.close()
    elif url.startswith(("http://", "https://")):
        import httpx

        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
            if response.status_code != 200:
                raise WeightsError(f"{url}: HTTP {response.status_code}")
            yield _HttpStream(response.iter_bytes(CHUNK))
    else:
        with Path(url.removeprefix("file://")).open("rb") as f:
            yield f


class _HttpStream:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def read(self, _size: int = -1) -> bytes:
        return next(self.chunks, b"")


def download(url: str, target: Path, digest: str) -> None:
    """``url`` into ``target`` if its SHA-256 is ``digest``; otherwise nothing is kept."""
    try:
        with open_source(url) as stream:
            write_checked(target, read_chunks(stream), digest)
    except ChecksumMismatch as mismatch:
        raise WeightsError(
            f"{url}: SHA-256 {mismatch.actual} does not match the manifest's {digest}"
        ) from None
    except WeightsError:
        raise
    except Exception as error:
        raise WeightsError(f"{url}: {error}") from error
    marker_of(target).write_text(stamp(target, digest))


def fetch(
    manifest: Manifest, source: str, dest: Path, only: list[str] | None = None, *, rehash: bool = False
) -> dict[str, list[str]]:
    """Fetch the manifest's groups (all, or ``only``); returns ``{"fetched": [...], "kept": [...]}``."""
    unknown = set(only or ()) - set(manifest.models)
    if unknown:
        raise WeightsError(f"no group {sorted(unknown)} in the manifest (it has {sorted(manifest.models)})")
    if not source:
        raise WeightsError(
            "no source: pass --source, set CALLCOV_WEIGHTS_SOURCE, or set the manifest's source"
        )
    report: dict[str, list[str]] = {"fetched": [], "kept": []}
    for group, entry in manifest.models.items():
        if only and group not in only:
            continue
        for name, digest in entry.files.items():
            target = dest / entry.folder / name
            if is_verified(target, digest, rehash=rehash):
                report["kept"].append(str(target))
                continue
            download(f"{source.rstrip('/')}/{entry.folder}/{name}", target, digest)
            report["fetched"].append(str(target))
    return report


def manifest_entry(group: str, folder: Path) -> dict[str, Any]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise WeightsError(f"{folder} has no files")
    checksums = {p.relative_to(folder).as_posix(): sha256_of(p) for p in files}
    return {group: {"folder": folder.name, "files": checksums}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.fetch_weights", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("fetch", help="fetch and verify the manifest's files")
    get.add_argument("--manifest", type=Path, required=True)
    get.add_argument("--only", action="append", help="a group of the manifest (repeatable); default: all")
    get.add_argument("--source", default=os.environ.get("CALLCOV_WEIGHTS_SOURCE", ""))
    get.add_argument("--dest", type=Path, default=os.environ.get("CALLCOV_INFERENCE__MODEL_DIR"))
    get.add_argument("--rehash", action="store_true", help="hash files already present even if marked")
    make = commands.add_parser("manifest", help="print a manifest entry for a folder of checked weights")
    make.add_argument("--group", required=True)
    make.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "manifest":
            sys.stdout.write(
                yaml.safe_dump({"models": manifest_entry(args.group, args.folder)}, sort_keys=False)
            )
            return 0
        if args.dest is None:
            raise WeightsError("no destination: set CALLCOV_INFERENCE__MODEL_DIR or pass --dest")
        manifest = load_manifest(args.manifest)
        report = fetch(manifest, args.source or manifest.source, args.dest, args.only, rehash=args.rehash)
    except WeightsError as error:
        sys.stderr.write(f"fetch_weights: {error}\n")
        return 1
    sys.stdout.write(
        f"fetch_weights: {len(report['fetched'])} fetched, {len(report['kept'])} already verified\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
