"""Is the LLM we are configured to use really there, and really private?

``check_llm`` asks the endpoint for its models (with the internal key) and fails when the configured
model is not among them; it then sends the same request with no credentials and fails when that is
answered: an open model route is free inference for whoever finds the port. The dispatcher runs
``wait_for_llm`` before it claims a job (a model that is still loading is waited for; a wrong name or
an open route fails at once), and the api's ``/health`` runs ``check_llm`` (``callcov.health``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from callcov.inference.openai_client import OpenAICompatibleClient
from callcov.inference.ports import InferenceError

logger = logging.getLogger("callcov.inference")


class LLMCheckFailed(Exception):
    """The configured LLM cannot be used as configured."""


class LLMNotServed(LLMCheckFailed):
    """The endpoint answers, but does not serve the configured model."""


class LLMRoutePublic(LLMCheckFailed):
    """The endpoint answers a caller without the internal key (or no internal key is configured)."""


class LLMUnreachable(LLMCheckFailed):
    """The endpoint did not answer with its models in time."""


async def check_llm(client: OpenAICompatibleClient, *, require_private: bool = True) -> list[str]:
    """The served model ids, once the configured one is among them (and, with ``require_private``,
    the route refuses a caller without credentials). Raises ``InferenceError`` while the endpoint
    cannot answer (not deployed yet, loading, down) and ``LLMCheckFailed`` when it answers wrongly."""
    if require_private and not client.has_credentials:
        raise LLMRoutePublic(
            "no internal key for the LLM route: set CALLCOV_INFERENCE__LLM_API_KEY on every node "
            "(Serve's proxies refuse /llm without it)"
        )
    served = await client.list_models()
    if client.model not in served:
        raise LLMNotServed(
            f"model {client.model!r} is not served by {client.base_url}; it serves {served}. "
            "Set the dispatcher's and api's llm_model from the llm app's model (configs/serve.*.yaml)."
        )
    if require_private:
        status = await client.status_without_credentials()
        if status < 300:
            raise LLMRoutePublic(
                f"{client.base_url}/models answered HTTP {status} without credentials: the LLM route is "
                "public. Install the proxy guard (RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH="
                "deployments.proxy:proxy_middlewares) on every node."
            )
    return served


async def wait_for_llm(
    client: OpenAICompatibleClient,
    *,
    timeout_s: float,
    interval_s: float = 2.0,
    require_private: bool = True,
) -> list[str]:
    """``check_llm`` until it passes; an endpoint that cannot answer yet is retried until
    ``timeout_s``, a wrong answer fails at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await check_llm(client, require_private=require_private)
        except InferenceError as exc:
            if time.monotonic() + interval_s > deadline:
                raise LLMUnreachable(
                    f"the LLM at {client.base_url} did not answer within {timeout_s:g} s: {exc}"
                ) from exc
            logger.info("waiting for the LLM at %s: %s", client.base_url, exc)
        await asyncio.sleep(interval_s)
