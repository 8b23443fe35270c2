#!/usr/bin/env bash
# Regenerates the console's screenshots in docs/console/ (each page at laptop and phone widths) by
# running its browser test with CALLCOV_CONSOLE_SCREENSHOTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/console
CALLCOV_CONSOLE_SCREENSHOTS=1 HF_HUB_OFFLINE=1 .venv/bin/pytest -q tests/console "$@"
