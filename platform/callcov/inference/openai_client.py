"""``LLMClient`` over any OpenAI-compatible chat endpoint: vLLM (``ray.serve.llm``) on GPUs, our llama.cpp
deployment on CPUs, or an external service. Plain HTTP with httpx; no model library is imported here.

Errors: transport failures, timeouts, 408, 429 and 5xx raise ``InferenceError`` (retried); 401, 403 and
404 raise ``LLMUnavailable`` (an ``InferenceError``: the model is not served to us, a deployment fault,
retried); any other 4xx, or a 2xx that is not a chat completion, raises ``LLMRequestRejected`` (this
request cannot succeed, e.g. over the context: the scorer degrades); an answer that is not JSON valid
for the schema raises ``LLMOutputInvalid`` (re-ask).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
import jsonschema

from callcov.config import InferenceSettings
from callcov.inference.ports import (
    ChatMessage,
    InferenceError,
    LLMOutputInvalid,
    LLMRequestRejected,
    LLMUnavailable,
)

RETRYABLE_STATUS = frozenset({408, 429})
UNAVAILABLE_STATUS = frozenset({401, 403, 404})
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REASON_CHARS = 200


def build_llm_client(inference: InferenceSettings) -> OpenAICompatibleClient:
    """The client of the configured LLM endpoint, with the internal key."""
    return OpenAICompatibleClient(
        inference.llm_base_url,
        inference.llm_model,
        api_key=inference.llm_api_key or None,
        timeout_s=inference.llm_timeout_s,
    )


class OpenAICompatibleClient:
    """``chat_json`` with ``response_format=json_schema`` at temperature 0, validated with jsonschema."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``base_url`` ends before ``/chat/completions``, e.g. ``http://127.0.0.1:8000/llm/v1``. A given
        ``http`` client is used as is and not closed here."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=self._timeout)

    async def chat_json(
        self,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        schema: dict[str, Any],
        *,
        max_tokens: int = 1024,
    ) -> dict[str, Any]:
        """One completion constrained by ``schema``, parsed and validated."""
        validator = _validator(schema)
        body = {
            "model": self.model,
            "messages": [_message(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(schema), "schema": schema, "strict": True},
            },
        }
        reply = await self._request("POST", "/chat/completions", json=body)
        content, finish_reason = _content(reply)
        return _parse_answer(content, finish_reason, validator)

    async def list_models(self) -> list[str]:
        """The model ids the endpoint serves (``GET /models``)."""
        reply = await self._request("GET", "/models")
        data = reply.get("data")
        if not isinstance(data, list):
            raise LLMRequestRejected("GET /models: reply has no 'data' list", status_code=200)
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]

    @property
    def has_credentials(self) -> bool:
        return bool(self._headers)

    async def status_without_credentials(self) -> int:
        """The HTTP status of ``GET /models`` sent with no credentials (the endpoint must refuse it)."""
        response = await self._send("GET", "/models", headers={})
        return response.status_code

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> OpenAICompatibleClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response, whatever its status; a transport failure or timeout is an ``InferenceError``."""
        url = self.base_url + path
        kwargs.setdefault("headers", self._headers)
        try:
            return await self._http.request(method, url, timeout=self._timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise InferenceError(f"{method} {url}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise InferenceError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.base_url + path
        response = await self._send(method, path, **kwargs)
        status = response.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            raise InferenceError(f"{method} {url}: HTTP {status}: {_error_message(response)}")
        if status in UNAVAILABLE_STATUS:
            raise LLMUnavailable(
                f"{method} {url}: HTTP {status}: {_error_message(response)}", status_code=status
            )
        if status >= 300:
            raise LLMRequestRejected(
                f"{method} {url}: HTTP {status}: {_error_message(response)}", status_code=status
            )
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise LLMRequestRejected(
                f"{method} {url}: not an OpenAI-compatible reply: {response.text[:REASON_CHARS]!r}",
                status_code=status,
            )
        return reply


def _message(message: ChatMessage | Mapping[str, Any]) -> dict[str, Any]:
    return message.model_dump() if isinstance(message, ChatMessage) else dict(message)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A validator for ``schema``; a broken schema is a programming error (``SchemaError``)."""
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_name(schema: dict[str, Any]) -> str:
    title = str(schema.get("title", "")).strip().replace(" ", "_")
    return title if SCHEMA_NAME.match(title) else "response"


def _content(reply: dict[str, Any]) -> tuple[str | None, str | None]:
    """``choices[0].message.content`` and the finish reason; a reply without choices is rejected."""
    try:
        choice = reply["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LLMRequestRejected(
            f"not a chat completion: {json.dumps(reply)[:REASON_CHARS]}", status_code=200
        ) from exc
    content = message.get("content") if isinstance(message, dict) else None
    if content is None and isinstance(message, dict) and message.get("refusal"):
        raise LLMOutputInvalid(f"model refused: {str(message['refusal'])[:REASON_CHARS]}")
    return content, choice.get("finish_reason")


def _parse_answer(
    content: str | None, finish_reason: str | None, validator: jsonschema.protocols.Validator
) -> dict[str, Any]:
    if not content:
        raise LLMOutputInvalid(f"empty answer (finish_reason={finish_reason})")
    try:
        answer = json.loads(content)
    except ValueError as exc:
        cut = " (cut at max_tokens)" if finish_reason == "length" else ""
        raise LLMOutputInvalid(
            f"answer is not JSON{cut}: {exc.args[0] if exc.args else exc}: {content[:REASON_CHARS]!r}"
        ) from exc
    error = jsonschema.exceptions.best_match(validator.iter_errors(answer))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        raise LLMOutputInvalid(f"answer violates the schema at {where}: {error.message[:REASON_CHARS]}")
    if not isinstance(answer, dict):
        raise LLMOutputInvalid(f"answer is not a JSON object: {content[:REASON_CHARS]!r}")
    return answer


def _error_message(response: httpx.Response) -> str:
    """The message of an OpenAI-style error body (``{"error": {...}}`` or vLLM's flat form), else text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:REASON_CHARS] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:REASON_CHARS]
        if isinstance(error, str):
            return error[:REASON_CHARS]
        if body.get("message"):
            return str(body["message"])[:REASON_CHARS]
        if body.get("detail"):
            return str(body["detail"])[:REASON_CHARS]
    return json.dumps(body)[:REASON_CHARS]
