"""The plan decides the analysis level: free analyses are scored "compliance" (transcription and
compliance; quality and coaching not applicable), paid ones "full". Runs the real analysis job with a
test double of the transcriber."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from billing_support import new_account, submit
from conftest import job_runners
from fastapi import FastAPI

from callcov.inference.ports import TranscriptionRequest
from callcov.inference.transcript import Segment, Transcript
from callcov.scoring.scorer import NOT_IN_LEVEL

pytestmark = pytest.mark.asyncio

TRANSCRIPT = Transcript(
    language="en",
    duration_s=10.0,
    diarization="channels",
    model="double",
    segments=[
        Segment(
            speaker="agent",
            channel=0,
            text="Hello, thank you for calling Acme Bank, my name is John.",
            start=0.5,
            end=3.5,
            confidence=0.9,
        ),
        Segment(
            speaker="customer",
            channel=1,
            text="Hi John, I want to check my balance please.",
            start=4.0,
            end=7.0,
            confidence=0.9,
        ),
    ],
)  # type: ignore[call-arg]


class Transcriber:
    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        return TRANSCRIPT


async def analysed(app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    r = await submit(client, headers)
    assert r.status_code == 201, r.text
    analysis_id = r.json()["id"]
    await job_runners(app, Transcriber()).only("transcription", "scoring").drain()
    body = (await client.get(f"/api/v1/analysis/{uuid.UUID(analysis_id)}", headers=headers)).json()
    assert body["status"] == "completed", body
    return body["results"]  # type: ignore[no-any-return]


async def test_free_is_compliance_only_and_starter_is_full(client: httpx.AsyncClient, app: FastAPI) -> None:
    account, _ = await new_account(client, app)
    free = await analysed(app, client, account.headers)
    assert free["compliance"]["identity_verification"]["verified"] is True
    assert free["quality"]["greeting"]["status"] == "not_applicable"
    assert free["quality"]["greeting"]["reason"] == NOT_IN_LEVEL
    assert free["coaching"]["status"] == "not_applicable"
    r = await client.post("/api/v1/billing/subscription", json={"tier": "starter"}, headers=account.headers)
    assert r.status_code == 201
    full = await analysed(app, client, account.headers)
    assert full["quality"]["greeting"].get("reason") != NOT_IN_LEVEL
    assert full["coaching"]["status"] != "not_applicable"
