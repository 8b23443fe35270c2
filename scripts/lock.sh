#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml with `uv pip compile` (hashes, Python 3.11):
#   requirements.lock      runtime, for this platform (the CPU image, run.sh)
#   requirements-dev.lock  runtime + the dev group (test.sh)
#   requirements-gpu.lock  runtime + the `gpu` extra, for linux x86_64 with CUDA (the GPU image)
# Pins already in a lock are kept while they still satisfy pyproject.toml; pass --upgrade (or
# --upgrade-package NAME) to move them. Other arguments go to every `uv pip compile`.
#   scripts/lock.sh --check   resolves again into a temporary folder and fails if any lock differs
#                             (resolution only: nothing is installed; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || export PATH="$HOME/.local/bin:$PATH"

check=
if [ "${1:-}" = --check ]; then check=1; shift; fi

# name of the lock, then its own `uv pip compile` arguments
LOCKS=(
  "requirements.lock|"
  "requirements-dev.lock|--group dev"
  "requirements-gpu.lock|--extra gpu --python-platform x86_64-manylinux_2_28"
)

out_dir=.
if [ -n "$check" ]; then
  out_dir=$(mktemp -d)
  trap 'rm -rf "$out_dir"' EXIT
fi

status=0
for entry in "${LOCKS[@]}"; do
  lock=${entry%%|*}
  read -r -a own <<<"${entry#*|}"
  # The current lock is the starting point: its pins are the resolver's preferences.
  [ -n "$check" ] && [ -f "$lock" ] && cp "$lock" "$out_dir/$lock"
  uv pip compile pyproject.toml "${own[@]}" --generate-hashes --python-version 3.11 --quiet \
    --custom-compile-command "scripts/lock.sh" -o "$out_dir/$lock" "$@"
  if [ -n "$check" ]; then
    if [ ! -f "$lock" ]; then
      echo "$lock is missing: run scripts/lock.sh" >&2; status=1
    elif ! diff -u "$lock" "$out_dir/$lock" >"$out_dir/$lock.diff"; then
      echo "$lock is out of date with pyproject.toml: run scripts/lock.sh and commit it" >&2
      head -n 40 "$out_dir/$lock.diff" >&2
      status=1
    fi
  fi
done
[ -n "$check" ] && [ "$status" = 0 ] && echo "locks are consistent with pyproject.toml"
exit "$status"
