"""The layering contracts (``[tool.importlinter]`` in pyproject.toml, docs/architecture.md) hold, and
each one can fail: on a copy of the tree, adding back one forbidden import breaks exactly its contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# contract id -> (a module, an import that the contract forbids there)
FORBIDDEN = {
    "platform-no-runtimes": ("platform/callcov/kit/time.py", "import ray"),
    "core-below-domains": ("platform/callcov/worker/queue.py", "import callcov.analyses.schemas"),
    "billing-alone": ("platform/callcov/billing/plans.py", "import callcov.webhooks.schemas"),
    "webhooks-generic": ("platform/callcov/webhooks/schemas.py", "import callcov.analyses.schemas"),
    "deployments-edge": ("deployments/run.py", "import callcov.billing.plans"),
    "rubrics-below-analyses": ("platform/callcov/rubrics/refs.py", "import callcov.analyses.schemas"),
    "scoring-pure": ("platform/callcov/scoring/text.py", "import callcov.rubrics.refs"),
    "rescores-on-top": ("platform/callcov/analyses/schemas.py", "import callcov.rescores.errors"),
}


def _lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    args = [str(LINT_IMPORTS), "--no-cache"]
    for contract in contracts:
        args += ["--contract", contract]
    env = {**os.environ, "PYTHONPATH": f"{tree / 'platform'}{os.pathsep}{tree}"}
    return subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", copy)
    shutil.copytree(ROOT / "platform" / "callcov", copy / "platform" / "callcov")
    shutil.copytree(ROOT / "deployments", copy / "deployments")
    return copy


def test_the_contracts_hold(tree: Path) -> None:
    done = _lint(tree)
    assert done.returncode == 0, done.stdout[-4000:]
    assert f"{len(FORBIDDEN)} kept, 0 broken" in done.stdout


@pytest.mark.parametrize("contract", sorted(FORBIDDEN))
def test_a_forbidden_import_breaks_its_contract(tree: Path, contract: str) -> None:
    relative, line = FORBIDDEN[contract]
    module = tree / relative
    original = module.read_text()
    module.write_text(original + f"\n{line}  # added back by the test\n")
    try:
        done = _lint(tree, contract)
    finally:
        module.write_text(original)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "0 kept, 1 broken" in done.stdout
