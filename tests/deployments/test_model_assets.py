"""Packaged weights are joined from their packages' parts and kept only when the checksum matches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deployments.model_assets import Asset, AssetError, ensure_asset, package_file

PARTS = (("pytest", "__init__.py"), ("pytest", "__main__.py"))


def joined_sha256() -> str:
    return hashlib.sha256(b"".join(package_file(p, r).read_bytes() for p, r in PARTS)).hexdigest()


def test_parts_are_joined_and_verified(tmp_path: Path) -> None:
    asset = Asset(name="demo", target="joined.bin", parts=PARTS, sha256=joined_sha256())
    folder = ensure_asset(asset, tmp_path)
    assert hashlib.sha256((folder / "joined.bin").read_bytes()).hexdigest() == asset.sha256
    assert ensure_asset(asset, tmp_path) == folder  # verified by its marker the second time


def test_a_checksum_mismatch_keeps_nothing(tmp_path: Path) -> None:
    asset = Asset(name="demo", target="joined.bin", parts=PARTS, sha256="0" * 64)
    with pytest.raises(AssetError, match=f"checksum {joined_sha256()} does not match"):
        ensure_asset(asset, tmp_path)
    assert list((tmp_path / "demo").iterdir()) == []
