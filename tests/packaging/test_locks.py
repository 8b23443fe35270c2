"""The lock files agree with pyproject.toml, and the GPU lock holds together (docs/scaling.md, "GPU image").

``scripts/lock.sh --check`` resolves every lock again (resolution only: nothing is downloaded or
installed, the GPU lock is resolved for linux x86_64 without CUDA here) and fails on any difference.
The other checks read the locks: what a cluster mixing the two images needs, and the CUDA 12/13 layout.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(text)}


def test_locks_are_consistent_with_pyproject() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lock.sh"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{Path.home() / '.local' / 'bin'}:{os.environ.get('PATH', '')}"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_gpu_lock_has_the_gpu_stack_and_the_same_ray() -> None:
    cpu, gpu = pins("requirements.lock"), pins("requirements-gpu.lock")
    for name in ("vllm", "torch", "ray", "ctranslate2", "faster-whisper", "fastapi"):
        assert name in gpu, name
    # One Ray cluster may run both images (CPU workers, GPU workers): Ray must be the same version.
    assert gpu["ray"] == cpu["ray"]
    assert gpu["ctranslate2"] == cpu["ctranslate2"]


def test_gpu_lock_cuda_layout() -> None:
    gpu = pins("requirements-gpu.lock")
    # ctranslate2 (faster-whisper) dlopens libcublas.so.12; torch/vLLM bring CUDA 13's libcublas.so.13.
    assert gpu["ctranslate2"].startswith("4."), "re-check which CUDA this ctranslate2 loads (docs/scaling.md)"
    assert gpu["nvidia-cublas-cu12"].startswith("12.")
    # Both cuDNN wheels write nvidia/cudnn/lib/libcudnn*.so.9: whichever installs last would replace the
    # other's files. ctranslate2 4.x needs no cuDNN, so only torch's (cu13) may be there.
    assert not ("nvidia-cudnn-cu12" in gpu and "nvidia-cudnn-cu13" in gpu)


def test_dockerfiles_install_the_locks_that_lock_sh_writes() -> None:
    script = (ROOT / "scripts" / "lock.sh").read_text()
    for dockerfile, lock in (
        ("Dockerfile", "requirements.lock"),
        ("Dockerfile.gpu", "requirements-gpu.lock"),
    ):
        assert f'"{lock}|' in script
        assert f"uv pip sync --python /opt/venv/bin/python {lock}" in (ROOT / dockerfile).read_text()
