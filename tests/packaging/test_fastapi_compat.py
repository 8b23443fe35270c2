"""The API works on every FastAPI the locks hold: vLLM pins fastapi<0.137, so the GPU image runs an
older FastAPI than requirements.lock. A second venv gets requirements-dev.lock with the GPU lock's
versions of the web stack swapped in; there the routing, auth, submission and conventions tests run,
and the OpenAPI document must be the same as on the CPU lock's FastAPI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from callcov.config import Settings
from callcov.main import create_app

ROOT = Path(__file__).resolve().parents[2]
WEB_STACK = ("fastapi", "starlette", "pydantic", "pydantic-core", "pydantic-settings", "uvicorn")
API_TESTS = (
    "tests/callcov/test_conventions.py",
    "tests/callcov/test_auth.py",
    "tests/callcov/test_submission.py",
    "tests/callcov/test_request_id.py",
    "tests/callcov/test_api_keys.py",
)
OPENAPI = """
import json, sys
from pathlib import Path
from callcov.config import Settings
from callcov.main import create_app
app = create_app(Settings(environment="testing", data_dir=Path(sys.argv[1])))
print(json.dumps(app.openapi(), sort_keys=True))
"""


def pin(lock: str, name: str) -> str | None:
    for line in (ROOT / lock).read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].split()[0]
    return None


def gpu_web_stack() -> list[str]:
    """``name==version`` for each web package whose GPU-lock version differs from the dev lock's."""
    changed = []
    for name in WEB_STACK:
        gpu, dev = pin("requirements-gpu.lock", name), pin("requirements-dev.lock", name)
        if gpu and gpu != dev:
            changed.append(f"{name}=={gpu}")
    return changed


def _run(*args: str | Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    done = subprocess.run(
        [str(a) for a in args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="module")
def gpu_fastapi_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    changed = gpu_web_stack()
    if not changed:
        pytest.skip("the GPU lock has the same web stack as requirements-dev.lock")
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    venv = tmp_path_factory.mktemp("fastapi-gpu") / "venv"
    python = venv / "bin" / "python"
    _run(uv, "venv", "--quiet", "--python", "3.11", venv)
    _run(uv, "pip", "sync", "--quiet", "--python", python, ROOT / "requirements-dev.lock")
    _run(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "-e", ROOT)
    _run(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", *changed)
    return python


def test_api_tests_pass_on_the_gpu_locks_fastapi(gpu_fastapi_python: Path) -> None:
    version = _run(gpu_fastapi_python, "-c", "import fastapi; print(fastapi.__version__)").strip()
    assert version == pin("requirements-gpu.lock", "fastapi")
    _run(gpu_fastapi_python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *API_TESTS)


def test_same_openapi_document_on_both(gpu_fastapi_python: Path, tmp_path: Path) -> None:
    here = create_app(Settings(environment="testing", data_dir=tmp_path / "here")).openapi()
    there = json.loads(_run(gpu_fastapi_python, "-c", OPENAPI, tmp_path / "there").splitlines()[-1])
    assert json.loads(json.dumps(here, sort_keys=True)) == there
