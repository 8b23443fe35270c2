"""An LLM endpoint that refuses the request (e.g. a prompt over its context) degrades the scoring at
once, without re-asking and without failing the analysis."""

from __future__ import annotations

import pytest
from scoring_factory import ScriptedLLM, compliant_call

from callcov.inference.ports import LLMRequestRejected
from callcov.scoring.scorer import score


@pytest.mark.asyncio
async def test_rejected_request_degrades_without_retry() -> None:
    llm = ScriptedLLM(LLMRequestRejected("context length exceeded", status_code=400))
    result = await score(compliant_call(), llm=llm, call_direction="outbound")
    assert result.llm_degraded is True and result.llm_attempts == 1
    assert "rejected" in (result.llm_error or "")
    assert result.results["compliance"]["identity_verification"]["verified"] is True
    assert result.results["summary"]
