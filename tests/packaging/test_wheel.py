"""The built wheel works outside the checkout: it carries its rubrics, prompts and migrations as
package data. Builds the wheel, installs it with the locked dependencies into a fresh venv in a
temporary directory, and there (cwd outside the repository, no PYTHONPATH) scores a stored
transcript with the default rubric and migrates an embedded SQLite database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json, sys
from pathlib import Path
import callcov
from callcov.config import Settings
from callcov.db import run_migrations
from callcov.inference.transcript import Transcript
from callcov.scoring.rubric import load_rubric
from callcov.scoring.scorer import score

transcript = Transcript.model_validate(json.loads(Path(sys.argv[1]).read_text()))
scored = asyncio.run(score(transcript, rubric=load_rubric("default"), llm=None, level="compliance"))
run_migrations(Settings(environment="testing", data_dir=Path(sys.argv[2])))
print(json.dumps({"package": callcov.__file__, "results": scored.results}))
"""

STORED_TRANSCRIPT = {
    "language": "en",
    "duration_s": 12.0,
    "segments": [
        {
            "speaker": "agent",
            "text": "Thank you for calling Acme Bank, my name is Sarah. "
            "This call may be recorded for quality and training purposes.",
            "start": 0.0,
            "end": 6.0,
            "confidence": 0.9,
        },
        {
            "speaker": "customer",
            "text": "Hi, my card number is 4242 4242 4242 4242.",
            "start": 6.5,
            "end": 10.0,
            "confidence": 0.9,
        },
    ],
}


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_installed_wheel_scores_a_stored_transcript(tmp_path: Path) -> None:
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    dist = tmp_path / "dist"
    _run(uv, "build", "--wheel", "--quiet", "--out-dir", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("callcov-*.whl")
    with zipfile.ZipFile(wheel) as archive:  # the review console ships as package data
        names = set(archive.namelist())
    assert {f"callcov/console/static/{f}" for f in ("index.html", "app.js", "app.css")} <= names
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    _run(uv, "venv", "--quiet", "--python", "3.11", venv, cwd=tmp_path)
    _run(uv, "pip", "sync", "--quiet", "--python", python, ROOT / "requirements.lock", cwd=tmp_path)
    _run(uv, "pip", "install", "--quiet", "--no-deps", "--python", python, wheel, cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "transcript.json").write_text(json.dumps(STORED_TRANSCRIPT))
    (work / "score.py").write_text(SCRIPT)
    out = json.loads(_run(python, "score.py", "transcript.json", work / "data", cwd=work).splitlines()[-1])

    assert str(venv) in out["package"], "scored with the checkout, not the installed wheel"
    results = out["results"]
    assert results["rubric"] == {"id": "default", "version": "3"}
    compliance = results["compliance"]
    assert compliance["identity_verification"]["verified"] is True
    assert compliance["mandatory_disclosures"]["matched_disclosures"] == ["call_recording_notice"]
    assert compliance["sensitive_data"]["shared"] is True
    assert (work / "data" / "callcov.db").exists()
