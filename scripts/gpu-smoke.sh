#!/usr/bin/env bash
# GPU smoke tests (marker `gpu`): faster-whisper on CUDA (float16, sequential and batched) and vLLM
# through ray.serve.llm answering one JSON-schema question. For a machine with a GPU, CUDA, vLLM and
# the project's dependencies installed. Weights come from local paths, never a hub:
#   CALLCOV_TEST_GPU_MODEL   a CTranslate2 Whisper folder (default: the packaged base model)
#   CALLCOV_TEST_VLLM_MODEL  an HF-format LLM folder (the vLLM test is skipped without it)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
exec "${PYTHON:-.venv/bin/python}" -m pytest -m gpu tests/gpu -q "$@"
