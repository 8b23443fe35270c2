"""What the platform needs from the models, as Protocols. ``deployments/`` implements them with Ray
Serve handles; tests may pass doubles for fast unit tests. Nothing here imports a model library."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from callcov.inference.transcript import Transcript


class TranscriptionRequest(BaseModel):
    audio_path: str  # a local path (or storage URI resolved to one) that the transcriber can read
    # The recording's storage URI: a transcriber on another node, where ``audio_path`` does not
    # exist, fetches it from storage (S3-compatible storage in a multi-node cluster).
    audio_uri: str | None = None
    language: str | None = None
    # Stereo calls: which channel is the agent (the other is the customer).
    agent_channel: int = 0
    # The format the submission probe detected (``callcov.inference.audio``): the decoder opens the
    # file with that format's demuxer and refuses a file whose content says otherwise.
    audio_format: str | None = None
    # The most audio (seconds) the decoder may produce: the probed duration plus a margin
    # (``decode_limit_s``). None: the transcriber's own maximum call duration.
    max_duration_s: float | None = Field(default=None, gt=0)


class Transcriber(Protocol):
    async def transcribe(self, request: TranscriptionRequest) -> Transcript: ...


class ChatMessage(BaseModel):
    role: str
    content: str


class LLMClient(Protocol):
    """An OpenAI-compatible chat endpoint (vLLM on GPUs, llama.cpp on CPUs, or any external one)."""

    model: str

    async def chat_json(
        self, messages: list[ChatMessage], schema: dict[str, Any], *, max_tokens: int = 1024
    ) -> dict[str, Any]:
        """One completion constrained by ``schema`` (JSON Schema), parsed. Raises ``LLMOutputInvalid``
        when the answer is not valid JSON for the schema."""
        ...


class WithStatus(Exception):
    """An error that keeps the endpoint's HTTP status, picklable across Ray actor boundaries."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code

    def __reduce__(self) -> tuple[object, ...]:
        return (_with_status, (type(self), str(self), self.status_code))


def _with_status(cls: type[WithStatus], message: str, status_code: int) -> WithStatus:
    return cls(message, status_code=status_code)


class InferenceError(Exception):
    """A transient failure of a model backend (busy, unavailable, timed out): the job is retried."""


class InferenceCrashed(InferenceError):
    """The model's replica died while it worked on this request (killed for memory, a native crash):
    the input may be what killed it, so the job counts a crash (``CALLCOV_WORKER__MAX_CRASHES``)."""


class LLMUnavailable(WithStatus, InferenceError):
    """The endpoint does not serve this model to us (401, 403 or 404: wrong model name, key or route,
    or a model still being deployed). A deployment fault, not a verdict on the call: the job is
    retried with backoff (never scored on rules alone), and the start-up check fails loudly."""


class LLMOutputInvalid(Exception):
    """The model answered, but not with JSON that satisfies the schema."""


class LLMRequestRejected(WithStatus):
    """The endpoint refused this request (a 4xx other than 401/403/404/408/429, or a reply that is not
    a chat completion), e.g. a prompt over the context. Retrying will not help: the scorer degrades to
    its deterministic checks and records why."""
