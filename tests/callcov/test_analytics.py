"""Pass/fail per compliance requirement (issue 15): the ``verdict`` written into each compliance
check, the calls list's ``failed_check`` filter, and ``GET /analytics/agents`` (per-agent
scorecards, paginated and scoped)."""

from __future__ import annotations

import httpx
import pytest
from conftest import SignUp, create_key, job_runners
from fastapi import FastAPI
from test_pipeline import TRANSCRIPT, segment
from test_submission import submit

from callcov.inference.ports import TranscriptionRequest
from callcov.inference.transcript import Transcript
from callcov.scoring.verdicts import REQUIREMENTS, failed_checks, verdicts

pytestmark = pytest.mark.asyncio

NAMELESS = TRANSCRIPT.model_copy(
    update={
        "segments": [
            segment("agent", "Hello, thank you for calling Acme Bank.", 0.5),
            segment("agent", "This call may be recorded for quality purposes.", 4.0),
            segment("customer", "Hi, I want to check my balance please.", 7.5),
        ]
    }
)


class Scripted:
    """Transcriber double: the same recorded transcript for every call it is given (a drain also
    works the jobs other tests left queued in the shared database)."""

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript

    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        return self.transcript


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def calls(
    client: httpx.AsyncClient, app: FastAPI, key: str, plan: list[tuple[str, Transcript]]
) -> list[str]:
    ids = []
    for agent, transcript in plan:
        r = await submit(client, key, agent_id=agent)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        runners = job_runners(app, Scripted(transcript), worker={"concurrency": 1})
        await runners.only("transcription", "scoring").drain()
    return ids


async def test_verdicts_filter_and_agent_scorecards(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    plan = [("agent-a", TRANSCRIPT), ("agent-a", NAMELESS), ("agent-b", TRANSCRIPT)]
    ids = await calls(client, app, key, plan)
    first = (await client.get(f"/api/v1/analysis/{ids[0]}", headers=h(key))).json()
    compliance = first["results"]["compliance"]
    assert compliance["identity_verification"]["verdict"] == "pass"
    assert compliance["purpose_declaration"]["verdict"] in ("pass", "fail", "not_applicable")
    assert set(verdicts(first["results"])) == set(REQUIREMENTS)
    nameless = (await client.get(f"/api/v1/analysis/{ids[1]}", headers=h(key))).json()
    assert nameless["results"]["compliance"]["identity_verification"]["verdict"] == "fail"
    assert "identity_verification" in failed_checks(nameless["results"])

    listed = (await client.get("/api/v1/analysis?failed_check=identity_verification", headers=h(key))).json()
    assert [item["id"] for item in listed["items"]] == [ids[1]]
    assert (await client.get("/api/v1/analysis?failed_check=nope", headers=h(key))).status_code == 422

    cards = (await client.get("/api/v1/analytics/agents?bucket=day", headers=h(key))).json()
    assert cards["object"] == "list" and cards["total"] == 2
    a, b = cards["items"]
    assert (a["agent_id"], a["calls"], b["agent_id"], b["calls"]) == ("agent-a", 2, "agent-b", 1)
    identity = a["checks"]["identity_verification"]
    assert (identity["passed"], identity["failed"], identity["pass_rate"]) == (1, 1, 0.5)
    assert b["checks"]["identity_verification"]["pass_rate"] == 1.0
    assert a["minutes"] > 0 and a["object"] == "agent_scorecard" and a["period"]["bucket"] == "day"
    assert len(a["trend"]) == 1 and a["trend"][0]["calls"] == 2 and a["pass_rate"] < b["pass_rate"]
    page = (await client.get("/api/v1/analytics/agents?limit=1&skip=1", headers=h(key))).json()
    assert [c["agent_id"] for c in page["items"]] == ["agent-b"] and page["has_more"] is False
    only = (await client.get("/api/v1/analytics/agents?agent_id=agent-b", headers=h(key))).json()
    assert only["total"] == 1
    r = await client.get("/api/v1/analytics/agents?created_gte=100&created_lte=50", headers=h(key))
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"
    r = await client.get("/api/v1/analytics/agents?created_gte=0&created_lte=99999999", headers=h(key))
    assert r.status_code == 400
    for other in (
        await create_key(client, await signed_up(), "test"),
        await create_key(client, await signed_up(), "live"),
    ):
        assert (await client.get("/api/v1/analytics/agents", headers=h(other))).json()["total"] == 0
        listed = (
            await client.get("/api/v1/analysis?failed_check=identity_verification", headers=h(other))
        ).json()
        assert listed["total"] == 0


async def test_a_jwt_acts_in_test_mode_with_the_mode_header(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    account = await signed_up()
    key = await create_key(client, account, "test")
    test_id = (await submit(client, key)).json()["id"]
    live = (await client.get("/api/v1/analysis", headers=account.headers)).json()
    assert live["total"] == 0  # a JWT acts in live mode
    test = (await client.get("/api/v1/analysis", headers={**account.headers, "CallCov-Mode": "test"})).json()
    assert [item["id"] for item in test["items"]] == [test_id] and test["items"][0]["livemode"] is False
    r = await client.get("/api/v1/analysis", headers={**account.headers, "CallCov-Mode": "sandbox"})
    assert r.status_code == 401 and "CallCov-Mode" in r.json()["error"]["message"]
    both = {"X-API-Key": key, "CallCov-Mode": "live"}  # a key's own mode wins
    assert (await client.get("/api/v1/analysis", headers=both)).json()["total"] == 1
