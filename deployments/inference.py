"""The platform's inference ports, implemented with Ray Serve handles."""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from ray import serve
from ray.exceptions import ActorDiedError, RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    RayServeException,
    RequestCancelledError,
)

from callcov.inference.ports import InferenceCrashed, InferenceError, TranscriptionRequest
from callcov.inference.transcript import Transcript
from deployments.capacity import TRANSCRIPTION_TIMEOUT_S
from deployments.db_pools import PoolArgs

TRANSIENT = (
    BackPressureError,
    DeploymentUnavailableError,
    RequestCancelledError,
    RayActorError,
    TimeoutError,
)


def replica_options(
    num_cpus: float, db_pool: PoolArgs | None, llm_model: str | None, env_extra: dict[str, str] | None = None
) -> dict[str, Any]:
    """``ray_actor_options`` of an ``api`` or ``dispatcher`` replica: its database pool (sized from the
    replica counts), the served model's name (from the Serve config, which also turns the replica's
    LLM check on) and ``env_extra``, on top of the application's own variables, as environment
    variables that ``callcov.config`` reads like every other setting."""
    env = app_env_vars()
    env |= db_pool.env_vars() if db_pool is not None else {}
    env |= env_extra or {}
    if llm_model is not None:
        env |= {"CALLCOV_INFERENCE__LLM_MODEL": llm_model, "CALLCOV_INFERENCE__CHECK_LLM": "true"}
    options: dict[str, Any] = {"num_cpus": num_cpus}
    if env:
        options["runtime_env"] = {"env_vars": env}
    return options


def app_env_vars() -> dict[str, str]:
    """The application's runtime_env env_vars, where ``deployments.deploy`` puts the settings and
    secrets. A builder runs in Serve's build task, inside that runtime_env; but Serve gives it only to
    deployments without a runtime_env of their own, so a builder that sets one carries them over."""
    if not ray.is_initialized():
        return {}
    runtime_env = ray.get_runtime_context().runtime_env or {}
    return {str(k): str(v) for k, v in (runtime_env.get("env_vars") or {}).items()}


class ServeTranscriber:
    """Calls the ``whisper`` Serve application; Serve's overload and availability errors become
    ``InferenceError`` so the job is retried with backoff. A replica that died while it held this
    request (``ActorDiedError``: killed for memory, a native crash) is ``InferenceCrashed``: the call
    may be what killed it, so the job's crash budget counts it."""

    def __init__(self, app_name: str, timeout_s: float = TRANSCRIPTION_TIMEOUT_S) -> None:
        self.app_name = app_name
        self.timeout_s = timeout_s
        self._handle: Any = None

    def _get_handle(self) -> Any:
        if self._handle is None:
            self._handle = serve.get_app_handle(self.app_name)
        return self._handle

    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        try:
            response = self._get_handle().transcribe.remote(request)
            transcript: Transcript = await asyncio.wait_for(response, timeout=self.timeout_s)
        except ActorDiedError as exc:
            raise InferenceCrashed(f"the transcription replica died: {exc}") from exc
        except TRANSIENT as exc:
            raise InferenceError(f"transcription unavailable: {type(exc).__name__}: {exc}") from exc
        except RayServeException as exc:
            raise InferenceError(f"transcription app {self.app_name}: {exc}") from exc
        return transcript
