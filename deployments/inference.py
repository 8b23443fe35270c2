"""The platform's inference ports, implemented with Ray Serve handles."""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    RayServeException,
    RequestCancelledError,
)

from callcov.inference.ports import InferenceError, TranscriptionRequest
from callcov.inference.transcript import Transcript

TRANSIENT = (
    BackPressureError,
    DeploymentUnavailableError,
    RequestCancelledError,
    RayActorError,
    TimeoutError,
)


def llm_actor_options(llm_model: str | None) -> dict[str, Any]:
    """``ray_actor_options`` that give a replica the served model's name (from the Serve config) and
    turn its LLM check on; read by ``callcov.config`` like every other setting."""
    if llm_model is None:
        return {}
    env = {"CALLCOV_INFERENCE__LLM_MODEL": llm_model, "CALLCOV_INFERENCE__CHECK_LLM": "true"}
    return {"runtime_env": {"env_vars": env}}


class ServeTranscriber:
    """Calls the ``whisper`` Serve application; Serve's overload and availability errors become
    ``InferenceError`` so the job is retried with backoff."""

    def __init__(self, app_name: str, timeout_s: float = 1800.0) -> None:
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
        except TRANSIENT as exc:
            raise InferenceError(f"transcription unavailable: {type(exc).__name__}: {exc}") from exc
        except RayServeException as exc:
            raise InferenceError(f"transcription app {self.app_name}: {exc}") from exc
        return transcript
