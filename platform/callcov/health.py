"""``/health`` (readiness) and ``/healthz`` (liveness), outside the API's schema.

``/health`` answers 200 ``{"status": "ok", "checks": {...}}`` when the database answers and, where
``inference.check_llm`` is on (the Serve ingress), the configured model is served by a private route
(``callcov.inference.llm_check``); otherwise 503 ``{"status": "unavailable", "checks": {...}}`` with
the reason of each failed check, so a deploy that points at the wrong model fails loudly. The LLM
answer is cached for ``LLM_CHECK_TTL_S`` per replica, so probes never load the model endpoint.
``/healthz`` only says that the process serves HTTP.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from callcov.config import InferenceSettings
from callcov.inference.llm_check import LLMCheckFailed, check_llm
from callcov.inference.openai_client import build_llm_client
from callcov.inference.ports import InferenceError
from callcov.state import StateDep

LLM_CHECK_TTL_S = 10.0
CHECK_TIMEOUT_S = 5.0


class LLMProbe:
    """``check_llm`` with its verdict kept for ``LLM_CHECK_TTL_S``."""

    def __init__(self, inference: InferenceSettings) -> None:
        self.inference = inference.model_copy(update={"llm_timeout_s": CHECK_TIMEOUT_S})
        self._verdict: tuple[float, str] | None = None

    async def verdict(self) -> str:
        now = time.monotonic()
        if self._verdict is not None and now - self._verdict[0] < LLM_CHECK_TTL_S:
            return self._verdict[1]
        async with build_llm_client(self.inference) as client:
            try:
                await check_llm(client)
                verdict = "ok"
            except (LLMCheckFailed, InferenceError) as exc:
                verdict = str(exc)[:500]
        self._verdict = (now, verdict)
        return verdict


async def _database(state: Any) -> str:
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready"; it is reported
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return "ok"


def build_health_router(inference: InferenceSettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    probe = LLMProbe(inference) if inference.check_llm else None

    @router.get("/health")
    async def health(state: StateDep) -> JSONResponse:
        checks = {"database": await _database(state)}
        if probe is not None:
            checks["llm"] = await probe.verdict()
        ok = all(value == "ok" for value in checks.values())
        body = {"status": "ok" if ok else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return router
