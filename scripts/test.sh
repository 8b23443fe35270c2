#!/usr/bin/env bash
# Installs what the tests need (locked dev dependencies; espeak-ng, sox, ffmpeg, PostgreSQL and Redis
# when missing), makes sure both servers run, checks the import contracts, then runs the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
scripts/system-packages.sh
scripts/services.sh
export HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
.venv/bin/lint-imports --no-cache   # the layering contracts in pyproject.toml (docs/architecture.md)
exec .venv/bin/pytest "$@"
