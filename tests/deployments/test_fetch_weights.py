"""Weights onto a new node: fetched from an S3 API server on loopback (moto's) or an HTTP mirror,
checked against the manifest's SHA-256, skipped once verified, refused on a mismatch."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import yaml
from conftest import S3_BUCKET, s3_server

from deployments.fetch_weights import Manifest, WeightsError, fetch, load_manifest, main, manifest_entry

ROOT = Path(__file__).resolve().parents[2]
FILES = {"model.bin": b"\x00weights\x01" * 1000, "config.json": b'{"layers": 4}', "tok/vocab.json": b"[]"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(files: dict[str, bytes] = FILES) -> Manifest:
    entry = {"folder": "faster-whisper-large-v3-turbo", "files": {n: sha(d) for n, d in files.items()}}
    return Manifest.model_validate({"models": {"whisper": entry}})


@pytest.fixture(scope="module")
def bucket() -> Iterator[str]:
    with s3_server() as endpoint, pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", endpoint)  # boto3 reads it, as on MinIO/Ceph
        client = boto3.client("s3")
        for name, data in FILES.items():
            client.put_object(
                Bucket=S3_BUCKET, Key=f"weights/faster-whisper-large-v3-turbo/{name}", Body=data
            )
        yield f"s3://{S3_BUCKET}/weights"


def test_fetch_from_a_bucket_then_skip(bucket: str, tmp_path: Path) -> None:
    report = fetch(manifest(), bucket, tmp_path)
    folder = tmp_path / "faster-whisper-large-v3-turbo"
    assert {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    } == FILES
    assert len(report["fetched"]) == 3 and not report["kept"]
    again = fetch(manifest(), bucket, tmp_path)  # idempotent: verified files stay
    assert not again["fetched"] and len(again["kept"]) == 3
    # whisper.py finds the folder by the model name of serve.gpu.yaml
    from deployments.whisper_decoding import resolve_model

    assert resolve_model("large-v3-turbo", str(tmp_path))[0] == folder


def test_a_damaged_file_is_fetched_again(bucket: str, tmp_path: Path) -> None:
    fetch(manifest(), bucket, tmp_path)
    target = tmp_path / "faster-whisper-large-v3-turbo" / "model.bin"
    target.write_bytes(b"truncated")
    report = fetch(manifest(), bucket, tmp_path)
    assert report["fetched"] == [str(target)] and target.read_bytes() == FILES["model.bin"]


def test_checksum_mismatch_fails_and_keeps_nothing(bucket: str, tmp_path: Path) -> None:
    wrong = manifest({**FILES, "model.bin": b"other weights"})
    with pytest.raises(WeightsError, match=r"model.bin: SHA-256 [0-9a-f]{64} does not match the manifest's"):
        fetch(wrong, bucket, tmp_path)
    folder = tmp_path / "faster-whisper-large-v3-turbo"
    assert not (folder / "model.bin").exists() and not list(folder.glob(".model.bin*"))


def test_missing_object_fails(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="NoSuchKey"):
        fetch(manifest({"absent.bin": b"x"}), bucket, tmp_path)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "mirror" / "faster-whisper-large-v3-turbo"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "mirror"))
    handler.log_message = lambda *_: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cli_from_an_http_mirror(mirror: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "weights.yaml"
    path.write_text(yaml.safe_dump(manifest().model_dump()))
    dest = tmp_path / "models"
    argv = ["fetch", "--manifest", str(path), "--only", "whisper", "--source", mirror, "--dest", str(dest)]
    assert main(argv) == 0 and "3 fetched" in capsys.readouterr().out
    assert main(argv) == 0 and "0 fetched, 3 already verified" in capsys.readouterr().out
    assert main([*argv[:4], "llm", *argv[5:]]) == 1 and "no group ['llm']" in capsys.readouterr().err


def test_manifest_command_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "faster-whisper-large-v3-turbo"
    for name, data in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert main(["manifest", "--group", "whisper", str(folder)]) == 0
    assert Manifest.model_validate(yaml.safe_load(capsys.readouterr().out)) == manifest()
    assert manifest_entry("whisper", folder)["whisper"]["files"]["tok/vocab.json"] == sha(b"[]")


def test_repository_manifest_names_the_configured_model_and_refuses_blank_checksums() -> None:
    raw = yaml.safe_load((ROOT / "configs" / "weights.gpu.yaml").read_text())
    apps = yaml.safe_load((ROOT / "configs" / "serve.gpu.yaml").read_text())["applications"]
    (whisper,) = [a for a in apps if a["name"] == "whisper"]
    model = whisper["args"]["model"]
    assert raw["models"]["whisper"]["folder"] in {model, f"faster-whisper-{model}", f"whisper-{model}"}
    if not all(raw["models"]["whisper"]["files"].values()):  # until the operator fills them in
        with pytest.raises(WeightsError, match="has no SHA-256"):
            load_manifest(ROOT / "configs" / "weights.gpu.yaml")
