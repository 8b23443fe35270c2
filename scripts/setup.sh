#!/usr/bin/env bash
# Creates .venv with Python 3.11 and installs the locked dependencies (runtime, or runtime + dev).
# Usage: scripts/setup.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-runtime}"

if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
if [ ! -x .venv/bin/python ]; then
  uv venv --quiet --python 3.11 .venv
fi
lock=requirements.lock
[ "$profile" = dev ] && lock=requirements-dev.lock
uv pip sync --quiet --python .venv/bin/python "$lock"
uv pip install --quiet --python .venv/bin/python --no-deps -e .
