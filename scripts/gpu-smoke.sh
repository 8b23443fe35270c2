#!/usr/bin/env bash
# GPU smoke test, for one Linux x86_64 machine with one NVIDIA GPU (a driver for CUDA 13, >= 580),
# Python 3.11 and access to the package index; meant to finish within 10 minutes:
#   1. installs requirements-gpu.lock into .venv-gpu (uv), the project without its dependencies, and
#      pytest from requirements-dev.lock;
#   2. runs the GPU tests (tests/gpu: faster-whisper on CUDA; the vLLM one too when
#      CALLCOV_TEST_VLLM_MODEL is set);
#   3. fetches the weights: Whisper large-v3-turbo (CTranslate2) and a small instruct model;
#   4. measures the transcription real-time factor (the whisper deployment's transcriber, float16);
#   5. deploys configs/serve.gpu.yaml for real with the one-GPU overrides of scripts/gpu_smoke.py
#      (the small models, loopback, one replica each), through callcov-serve (migrations first);
#   6. registers a user on the starter plan and submits three calls through the public API; each must
#      be `completed` with results.evaluation.llm == "evaluated";
#   7. prints the real-time factor, analyses per hour and scoring calls per hour.
# Settings (environment):
#   CALLCOV_SMOKE_WHISPER  Whisper weights: a local folder, s3://bucket/prefix (an S3-compatible store:
#                          AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...) or hf:<repo id>
#                          (default hf:mobiuslabsgmbh/faster-whisper-large-v3-turbo)
#   CALLCOV_SMOKE_LLM      the LLM's weights, same forms (default hf:Qwen/Qwen2.5-1.5B-Instruct)
#   CALLCOV_SMOKE_LLM_ID   the model id vLLM serves, the dispatcher asks for and /health checks
#                          (default: the repo id)
#   CALLCOV_SMOKE_MODELS   where fetched weights are kept between runs (default ~/.cache/callcov-smoke)
#   CALLCOV_SMOKE_AUDIO    one WAV submitted three times, instead of three synthetic calls (espeak-ng, sox)
#   CALLCOV_SMOKE_PORT     the Serve HTTP port (default 8000, on 127.0.0.1)
# Only the fetch step may reach a model hub (HF_HUB_OFFLINE=0 in that process); the service is offline.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || export PATH="$HOME/.local/bin:$PATH"
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --user uv

WHISPER_SOURCE=${CALLCOV_SMOKE_WHISPER:-hf:mobiuslabsgmbh/faster-whisper-large-v3-turbo}
LLM_SOURCE=${CALLCOV_SMOKE_LLM:-hf:Qwen/Qwen2.5-1.5B-Instruct}
default_id=${LLM_SOURCE#hf:}
[ "$default_id" = "$LLM_SOURCE" ] && default_id=callcov-smoke-llm
LLM_ID=${CALLCOV_SMOKE_LLM_ID:-$default_id}
MODELS=${CALLCOV_SMOKE_MODELS:-$HOME/.cache/callcov-smoke}
PORT=${CALLCOV_SMOKE_PORT:-8000}
VENV=.venv-gpu
PY=$VENV/bin/python
work=$(mktemp -d)
server_pid=

step() { echo "=== [${SECONDS}s] $*"; }
cleanup() {
  local status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true   # serve run stops its Ray instance
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

step "1. install requirements-gpu.lock into $VENV"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || {
  echo "no NVIDIA GPU visible (nvidia-smi)" >&2; exit 1; }
[ -x "$PY" ] || uv venv --quiet --python 3.11 "$VENV"
uv pip sync --quiet --python "$PY" requirements-gpu.lock
uv pip install --quiet --python "$PY" --no-deps -e .
uv pip install --quiet --python "$PY" -c requirements-dev.lock pytest pytest-asyncio
# ctranslate2 (CUDA 12) dlopens libcublas.so.12: the nvidia-cublas-cu12 wheel's folder, as in Dockerfile.gpu.
site=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
export LD_LIBRARY_PATH="$site/nvidia/cublas/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
export CALLCOV_DATA_DIR="$work/data"

step "2. GPU tests (tests/gpu)"
"$PY" -m pytest -m gpu tests/gpu -q -p no:cacheprovider

step "3. weights: $WHISPER_SOURCE, $LLM_SOURCE"
mkdir -p "$MODELS"
whisper_dir="$MODELS/whisper-$(echo "$WHISPER_SOURCE" | tr -c 'A-Za-z0-9._-' '_')"
llm_dir="$MODELS/llm-$(echo "$LLM_SOURCE" | tr -c 'A-Za-z0-9._-' '_')"
"$PY" scripts/gpu_smoke.py fetch "$WHISPER_SOURCE" "$whisper_dir"
"$PY" scripts/gpu_smoke.py fetch "$LLM_SOURCE" "$llm_dir"

step "4. test calls and the transcription real-time factor"
calls=()
if [ -n "${CALLCOV_SMOKE_AUDIO:-}" ]; then
  calls=("$CALLCOV_SMOKE_AUDIO" "$CALLCOV_SMOKE_AUDIO" "$CALLCOV_SMOKE_AUDIO")
else
  scripts/system-packages.sh
  "$PY" - "$work" <<'EOF'
import sys
sys.path.insert(0, "tests")
from speech import ACME_CALL, synthesize_call
out = sys.argv[1]
synthesize_call(ACME_CALL, f"{out}/call1.wav", stereo=True)
synthesize_call(ACME_CALL, f"{out}/call2.wav", stereo=False)
synthesize_call(ACME_CALL, f"{out}/call3.wav", stereo=True, leading_silence_s=10.0)
EOF
  calls=("$work/call1.wav" "$work/call2.wav" "$work/call3.wav")
fi
"$PY" scripts/gpu_smoke.py rtf "$whisper_dir" "${calls[@]}" | tee "$work/rtf.json"

step "5. deploy configs/serve.gpu.yaml (one-GPU overrides) on 127.0.0.1:$PORT"
"$PY" scripts/gpu_smoke.py config configs/serve.gpu.yaml "$work/serve.yaml" \
  --whisper "$whisper_dir" --llm "$llm_dir" --model-id "$LLM_ID" --port "$PORT"
# The LLM route is internal: the dispatcher sends this key, callers without it are refused.
CALLCOV_INFERENCE__LLM_API_KEY=$("$PY" -c "import secrets; print(secrets.token_urlsafe(32))")
export CALLCOV_INFERENCE__LLM_API_KEY   # (the model name comes from the config: llm_model)
"$VENV/bin/callcov" migrate
setsid "$VENV/bin/callcov-serve" --config "$work/serve.yaml" --skip-migrations >"$work/serve.log" 2>&1 &
server_pid=$!
# Every application RUNNING (vLLM loads the weights and profiles memory: the slow part).
if ! "$PY" - "$server_pid" "$work/serve.yaml" "$work/serve.log" <<'EOF'
import os, re, subprocess, sys, time, yaml
pid, config, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
expected = {app["name"] for app in yaml.safe_load(open(config))["applications"]}
serve = os.path.join(os.path.dirname(sys.executable), "serve")
deadline = time.monotonic() + 420
while time.monotonic() < deadline:
    os.kill(pid, 0)  # the server is still there
    # This server's own Ray dashboard (another Ray instance on the machine may hold the default port).
    found = re.search(r"View the dashboard at \S*?(http://[0-9.]+:[0-9]+)", open(log).read())
    if found:
        done = subprocess.run([serve, "status", "-a", found.group(1)], capture_output=True, text=True)
        apps = (yaml.safe_load(done.stdout or "{}") or {}).get("applications") or {}
        states = {name: app.get("status") for name, app in apps.items()}
        if set(states) >= expected and all(states[name] == "RUNNING" for name in expected):
            print(f"applications running: {states}")
            sys.exit(0)
        if any(s in ("DEPLOY_FAILED", "UNHEALTHY") for s in states.values()):
            print(f"deployment failed: {states}", file=sys.stderr)
            sys.exit(1)
    time.sleep(5)
print("applications not running within 420 s", file=sys.stderr)
sys.exit(1)
EOF
then
  grep -v state-dump "$work/serve.log" | tail -n 80 >&2
  exit 1
fi

step "6. three calls through the public API"
audio_args=()
for call in "${calls[@]}"; do audio_args+=(--audio "$call"); done
if ! "$PY" scripts/smoke_api.py --base-url "http://127.0.0.1:$PORT" "${audio_args[@]}" --tier starter \
  --expect-llm evaluated --outbox-sqlite "$CALLCOV_DATA_DIR/callcov.db" --timeout 240 | tee "$work/api.txt"; then
  grep -v state-dump "$work/serve.log" | tail -n 80 >&2
  exit 1
fi

step "7. figures"
"$PY" - "$work/rtf.json" "$work/api.txt" <<'EOF'
import json, sys
rtf = json.loads(open(sys.argv[1]).read().splitlines()[-1])["transcription"]
api = json.loads([line for line in open(sys.argv[2]) if line.startswith("{")][-1])
rows = api["analyses"]
# Scoring time per call: the pipeline's processing time less the transcription time measured in step 4.
scoring_s = [max(r["processing_ms"] / 1000 - rtf["rtf"] * r["audio_s"], 1e-3) for r in rows]
print(f"transcription real-time factor: {rtf['rtf']} ({rtf['transcribe_s']} s for {rtf['audio_s']} s of audio)")
print(f"analyses per hour (three submitted at once, end to end): {api['analyses_per_hour']}")
print(f"scoring calls per hour (one at a time, from processing time less transcription): "
      f"{round(3600 / (sum(scoring_s) / len(scoring_s)))}")
EOF
step "passed in ${SECONDS} s (budget 600 s)"
