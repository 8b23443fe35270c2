#!/usr/bin/env bash
# Quick start: install what is needed, then serve CallCov on embedded defaults: a SQLite file in
# ./var, a local Ray instance started here, in-process rate limiting (no Redis needed), emails
# logged to the console (and kept in the outbox table). Extra arguments go to callcov-serve
# (for example --port 8080). Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh runtime
export CALLCOV_DATA_DIR="${CALLCOV_DATA_DIR:-$PWD/var}"
exec .venv/bin/callcov-serve "$@"
