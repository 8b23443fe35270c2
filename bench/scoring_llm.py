"""The CPU LLM in process for ``bench/scoring_eval.py``: llama.cpp (xllamacpp) with the packaged
Qwen2.5-Coder-0.5B GGUF and the settings of ``configs/serve.local.yaml``, behind the scorer's
``LLMClient`` interface (the request the OpenAI client sends, answered without HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callcov.inference.openai_client import _content, _message, _parse_answer, _validator
from callcov.inference.ports import ChatMessage
from deployments.llm_cpu import LlamaCppArgs, load_engine


class InProcessLLM:
    model = "qwen2.5-coder-0.5b (llama.cpp, in process)"

    def __init__(self) -> None:
        args = LlamaCppArgs(
            model="qwen2.5-coder-0.5b", model_name="bench", n_ctx=8192, n_threads=2, n_parallel=1
        )
        self._engine = load_engine(args)

    async def chat_json(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_tokens: int = 1024
    ) -> dict[str, Any]:
        body = {
            "model": "bench",
            "messages": [_message(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "scoring", "schema": schema, "strict": True},
            },
        }
        reply = self._engine.handle_chat_completions(body)
        content, finish_reason = _content(reply)
        return _parse_answer(content, finish_reason, _validator(schema))
