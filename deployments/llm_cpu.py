"""The CPU LLM: llama.cpp in-process (xllamacpp) behind an OpenAI-compatible FastAPI app.

``LlamaCppServer`` is a plain class: tests build it directly and serve ``build_asgi_app()`` with uvicorn;
``deployments.llm.build_cpu_app`` wraps it with ``serve.ingress()``, which calls
``__serve_build_asgi_app__`` on each replica. Routes (under the app's route prefix):
``POST /v1/chat/completions`` (non-streaming) and ``GET /v1/models``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from deployments.model_assets import QWEN_05B_GGUF, Asset, ensure_asset

logger = logging.getLogger(__name__)

# Models that ship in PyPI packages (see model_assets.py), by the name used in ``LlamaCppArgs.model``.
PACKAGED_MODELS: dict[str, Asset] = {"qwen2.5-coder-0.5b": QWEN_05B_GGUF}


class LlamaCppArgs(BaseModel):
    """Typed ``args`` of the CPU ``llm`` application."""

    model_config = ConfigDict(extra="forbid")

    name: str = "llm"
    # A packaged model name (PACKAGED_MODELS) or a path to a local .gguf file.
    model: str = "qwen2.5-coder-0.5b"
    # Where packaged models are assembled (default: $CALLCOV_DATA_DIR/models, see model_assets.py).
    model_dir: str | None = None
    # The model id clients send and /v1/models lists.
    model_name: str = "callcov-cpu-llm"
    # Total context; llama.cpp splits it between the n_parallel slots.
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int = Field(default=2, ge=1)
    n_parallel: int = Field(default=1, ge=1)
    # Default and cap of max_tokens per request.
    max_tokens: int = Field(default=1024, ge=1)
    # llama.cpp's own log: 0 silent, 1 errors, 2 warnings, 3 info (a few lines per request), 4 debug.
    log_verbosity: int = Field(default=2, ge=0, le=4)
    max_ongoing_requests: int = Field(default=4, ge=1)
    num_replicas: int | str = 1
    num_cpus: float = Field(default=1, ge=0)

    @field_validator("model")
    @classmethod
    def _known_or_gguf(cls, value: str) -> str:
        if value not in PACKAGED_MODELS and not value.endswith(".gguf"):
            raise ValueError(f"model must be one of {sorted(PACKAGED_MODELS)} or a path to a .gguf file")
        return value


class ChatEngine(Protocol):
    """What the server needs from llama.cpp (``xllamacpp.Server`` satisfies it); tests may pass a fake."""

    def handle_chat_completions(self, prompt: dict[str, Any]) -> dict[str, Any]: ...


def resolve_model_path(args: LlamaCppArgs) -> Path:
    """The GGUF file: a packaged model is assembled and checksum-verified on first use, never downloaded."""
    asset = PACKAGED_MODELS.get(args.model)
    if asset is not None:
        root = Path(args.model_dir) if args.model_dir else None
        return ensure_asset(asset, root) / asset.target
    path = Path(args.model).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF model {path} does not exist")
    return path


def load_engine(args: LlamaCppArgs) -> ChatEngine:
    """Loads the model into an in-process llama.cpp server. That server also opens its own HTTP port
    (random, loopback); a random API key that nobody knows locks it, while in-process calls skip it."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(resolve_model_path(args))
    params.model_alias = {args.model_name}
    params.n_ctx = args.n_ctx
    params.n_parallel = args.n_parallel
    params.n_predict = args.max_tokens
    params.cpuparams.n_threads = args.n_threads
    params.cpuparams_batch.n_threads = args.n_threads
    params.verbosity = args.log_verbosity
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.api_keys = [secrets.token_urlsafe(32)]
    return xllamacpp.Server(params)


def openai_error(status: int, message: str, error_type: str, code: str | int | None = None) -> JSONResponse:
    """An OpenAI-style error body."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code or status}}
    return JSONResponse(body, status_code=status)


class LlamaCppServer:
    """One replica: the model loaded in the constructor, calls run on a pool of ``n_parallel`` threads."""

    def __init__(
        self, args: LlamaCppArgs | dict[str, Any] | None = None, *, engine: ChatEngine | None = None
    ) -> None:
        self.args = LlamaCppArgs.model_validate(args or {})
        started = time.perf_counter()
        self.engine = engine if engine is not None else load_engine(self.args)
        self.load_seconds = time.perf_counter() - started
        self.created = int(time.time())
        # llama.cpp is thread-safe and batches its slots; this pool bounds the threads blocked in it (a
        # request still queued here is dropped if its handler is cancelled).
        self._pool = ThreadPoolExecutor(max_workers=self.args.n_parallel, thread_name_prefix="llamacpp")
        logger.info("llama.cpp model %s loaded in %.1f s", self.args.model, self.load_seconds)

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Serve's late-bound ingress hook (``serve.ingress()`` with no app)."""
        return self.build_asgi_app()

    def check_health(self) -> None:
        """Serve's replica health check."""
        if self.engine is None:
            raise RuntimeError("llama.cpp engine is not loaded")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def models(self) -> dict[str, Any]:
        """The OpenAI ``GET /v1/models`` body."""
        model = {
            "id": self.args.model_name,
            "object": "model",
            "created": self.created,
            "owned_by": "callcov",
            "meta": {"source": self.args.model, "n_ctx": self.args.n_ctx, "engine": "llama.cpp"},
        }
        return {"object": "list", "data": [model]}

    async def chat_completions(self, body: Any) -> JSONResponse:
        """Checks the request, runs it in llama.cpp, and maps its errors to OpenAI status codes."""
        refused = self._refusal(body)
        if refused is not None:
            return refused
        request = {**body, "model": self.args.model_name}
        loop = asyncio.get_running_loop()
        try:
            reply = await loop.run_in_executor(self._pool, self.engine.handle_chat_completions, request)
        except ValueError as exc:  # llama.cpp's invalid_argument: a bad request
            return openai_error(400, str(exc), "invalid_request_error")
        except Exception as exc:
            logger.exception("llama.cpp failed")
            return openai_error(500, f"{type(exc).__name__}: {exc}", "server_error")
        return _reply_response(reply)

    def _refusal(self, body: Any) -> JSONResponse | None:
        if not isinstance(body, dict):
            return openai_error(400, "the request body must be a JSON object", "invalid_request_error")
        if body.get("stream"):
            return openai_error(400, "stream=true is not supported by this endpoint", "invalid_request_error")
        model = body.get("model")
        if model is not None and model != self.args.model_name:
            message = f"The model `{model}` does not exist; this endpoint serves `{self.args.model_name}`."
            return openai_error(404, message, "invalid_request_error", "model_not_found")
        return None

    def build_asgi_app(self) -> FastAPI:
        """The FastAPI app over this server (routes close over ``self``)."""
        app = FastAPI(title="CallCov CPU LLM (llama.cpp)", docs_url=None, redoc_url=None)

        @app.get("/v1/models")
        async def list_models() -> dict[str, Any]:
            return self.models()

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> JSONResponse:
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                return openai_error(400, f"the request body is not JSON: {exc}", "invalid_request_error")
            return await self.chat_completions(body)

        @app.exception_handler(StarletteHTTPException)
        async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
            return openai_error(exc.status_code, str(exc.detail), "invalid_request_error")

        return app


def _reply_response(reply: Any) -> JSONResponse:
    """llama.cpp answers errors as ``{"error": {...}}`` (or a bare ``{"code", "type", "message"}``)."""
    if not isinstance(reply, dict):
        return openai_error(500, f"llama.cpp returned {type(reply).__name__}", "server_error")
    error = reply.get("error")
    if error is None and "choices" not in reply and "code" in reply:
        error = reply
    if isinstance(error, dict):
        status = error.get("code")
        status = status if isinstance(status, int) and 400 <= status <= 599 else 500
        return openai_error(
            status,
            str(error.get("message", "llama.cpp error")),
            str(error.get("type", "server_error")),
        )
    return JSONResponse(reply)
