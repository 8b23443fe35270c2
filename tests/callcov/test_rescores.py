"""Re-scoring one analysis (issue 14): a new results version with another rubric, the history, the
``analysis.rescored`` webhook only when asked, retranscription, idempotency, scoping and billing,
through the API and the production job runners (with the transcriber's test double)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from conftest import SignUp, count, create_key, job_runners
from fastapi import FastAPI
from sqlmodel import select
from test_pipeline import FakeTranscriber
from test_rubrics import create, with_fee_notice
from test_submission import submit

from callcov.models import Analysis, AnalysisResult, Job, Rescore, UsageRecord, WebhookEvent
from callcov.state import state_of_app
from callcov.worker.wiring import Runners

pytestmark = pytest.mark.asyncio

HOOK = "https://93.184.215.14/hook"


def h(key: str, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key, **extra}


def runners(app: FastAPI, transcriber: FakeTranscriber | None = None) -> Runners:
    every = job_runners(app, transcriber or FakeTranscriber(), worker={"concurrency": 2, "lease_s": 30})
    return every.only("transcription", "scoring", "rescoring")


async def completed(client: httpx.AsyncClient, app: FastAPI, key: str, **fields: str) -> dict[str, Any]:
    r = await submit(client, key, **fields)
    assert r.status_code == 201, r.text
    await runners(app).drain()
    body = (await client.get(f"/api/v1/analysis/{r.json()['id']}", headers=h(key))).json()
    assert body["status"] == "completed", body["metadata"]
    return body


async def rescore(client: httpx.AsyncClient, key: str, analysis_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/analysis/{analysis_id}/rescore", json=body, headers=h(key))


def missing(analysis: dict[str, Any]) -> list[str]:
    return analysis["results"]["compliance"]["mandatory_disclosures"]["missing_disclosures"]


async def test_rescore_with_a_new_disclosure_adds_a_results_version(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    older = await completed(client, app, key)
    assert older["results"]["rubric"]["id"] == "default" and "fee_notice" not in missing(older)
    rid = (await create(client, key, await with_fee_notice(client, key))).json()["id"]
    newer = await completed(client, app, key, rubric=rid)  # submitted with the new rubric
    assert newer["results"]["rubric"] == {"id": rid, "version": "1"} and "fee_notice" in missing(newer)
    r = await rescore(client, key, older["id"], rubric=rid)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (
        body["object"] == "rescore" and body["status"] == "processing" and body["analysis_id"] == older["id"]
    )
    assert body["rubric"] == {"id": rid, "version": "1"} and body["results_version"] is None
    assert body["created"] > 0 and body["retranscribe"] is False and body["webhook"] is False
    still = (await client.get(f"/api/v1/analysis/{older['id']}", headers=h(key))).json()
    assert still["results"] == older["results"]  # kept until the new version is ready
    await runners(app).drain()
    done = (await client.get(f"/api/v1/rescores/{body['id']}", headers=h(key))).json()
    assert done["status"] == "completed" and done["results_version"] == 2 and done["completed"] is not None
    newest = (await client.get(f"/api/v1/analysis/{older['id']}", headers=h(key))).json()
    assert newest["results"]["rubric"] == {"id": rid, "version": "1"}
    assert "fee_notice" in missing(newest) and newest["transcript"] == older["transcript"]
    history = (await client.get(f"/api/v1/analysis/{older['id']}/results", headers=h(key))).json()
    assert history["object"] == "list" and history["total"] == 2
    assert [v["version"] for v in history["items"]] == [2, 1]
    assert history["items"][0]["rubric"] == {"id": rid, "version": "1"}
    assert (
        history["items"][0]["rescore_id"] == body["id"]
        and history["items"][0]["results"] == newest["results"]
    )
    assert history["items"][1]["rubric"]["id"] == "default" and history["items"][1]["rescore_id"] is None
    assert history["items"][1]["results"] == older["results"]
    # A built-in again: pinned to its latest version, version 3 of the results.
    r = await rescore(client, key, older["id"], rubric="default")
    assert r.status_code == 202 and r.json()["rubric"]["version"] is not None
    await runners(app).drain()
    history = (await client.get(f"/api/v1/analysis/{older['id']}/results?limit=1", headers=h(key))).json()
    assert history["total"] == 3 and history["has_more"] is True and history["items"][0]["version"] == 3
    assert "fee_notice" not in missing(history["items"][0])


async def test_history_of_a_never_rescored_analysis(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    analysis = await completed(client, app, key)
    history = (await client.get(f"/api/v1/analysis/{analysis['id']}/results", headers=h(key))).json()
    assert history["total"] == 1 and history["items"][0]["version"] == 1
    assert history["items"][0]["results"] == analysis["results"]
    assert await count(app, AnalysisResult, analysis_id=uuid.UUID(analysis["id"])) == 0


async def test_rescored_webhook_only_when_asked(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    analysis = await completed(client, app, key, webhook_url=HOOK)
    aid = uuid.UUID(analysis["id"])
    assert (await rescore(client, key, analysis["id"], rubric="default")).status_code == 202
    await runners(app).drain()
    assert await count(app, WebhookEvent, analysis_id=aid, event_type="analysis.rescored") == 0
    r = await rescore(client, key, analysis["id"], rubric="default", webhook=True)
    assert r.status_code == 202
    await runners(app).drain()
    async with state_of_app(app).sessionmaker() as session:
        events = (
            await session.exec(
                select(WebhookEvent).where(
                    WebhookEvent.analysis_id == aid, WebhookEvent.event_type == "analysis.rescored"
                )
            )
        ).all()
    assert len(events) == 1 and events[0].url == HOOK
    payload = events[0].payload
    assert payload["id"] == analysis["id"] and payload["rescore"]["id"] == r.json()["id"]
    assert payload["rescore"]["results_version"] == 3
    plain = await completed(client, app, key)
    r = await rescore(client, key, plain["id"], rubric="default", webhook=True)
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"


async def test_refusals(client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp) -> None:
    key = await create_key(client, await signed_up(), "test")
    r = await submit(client, key)
    processing = r.json()["id"]
    r = await rescore(client, key, processing, rubric="default")
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict", r.text
    await runners(app).drain()
    for body in ({"rubric": "nope"}, {"rubric": "default@99"}):
        r = await rescore(client, key, processing, **body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error", r.text
    for body in (
        {},
        {"rubric": "default", "extra": 1},
        {"rubric": "Bad Ref!"},
        {"rubric": "default", "webhook": "x"},
    ):
        assert (await rescore(client, key, processing, **body)).status_code == 422
    assert (await rescore(client, key, str(uuid.uuid4()), rubric="default")).status_code == 404
    assert (await client.get(f"/api/v1/rescores/{uuid.uuid4()}", headers=h(key))).status_code == 404
    assert (await client.get(f"/api/v1/analysis/{uuid.uuid4()}/results", headers=h(key))).status_code == 404
    assert await count(app, Rescore, analysis_id=uuid.UUID(processing)) == 0


async def test_another_account_cannot_read_use_or_rescore(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    owner = await signed_up()
    key = await create_key(client, owner, "test")
    analysis = await completed(client, app, key)
    rid = (await create(client, key, await with_fee_notice(client, key))).json()["id"]
    done = (await rescore(client, key, analysis["id"], rubric=rid)).json()
    for other in (
        await create_key(client, await signed_up(), "test"),
        await create_key(client, owner, "live"),
    ):
        assert (await rescore(client, other, analysis["id"], rubric="default")).status_code == 404
        assert (await client.get(f"/api/v1/rescores/{done['id']}", headers=h(other))).status_code == 404
        r = await client.get(f"/api/v1/analysis/{analysis['id']}/results", headers=h(other))
        assert r.status_code == 404
    stranger = await create_key(client, await signed_up(), "test")
    theirs = await completed(client, app, stranger)
    r = await rescore(client, stranger, theirs["id"], rubric=rid)
    assert r.status_code == 400 and r.json()["error"]["message"] == f"Unknown rubric '{rid}'"


async def test_idempotency_key_starts_one_rescore(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    analysis = await completed(client, app, key)
    url = f"/api/v1/analysis/{analysis['id']}/rescore"
    headers = h(key, **{"Idempotency-Key": f"rescore-{uuid.uuid4().hex}"})
    first = await client.post(url, json={"rubric": "default"}, headers=headers)
    again = await client.post(url, json={"rubric": "default"}, headers=headers)
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    assert await count(app, Rescore, analysis_id=uuid.UUID(analysis["id"])) == 1
    other = await client.post(
        url, json={"rubric": "default", "webhook": False, "retranscribe": True}, headers=headers
    )
    assert other.status_code in (400, 409, 422) and other.json()["error"]["code"] != "internal_error"


async def test_a_rescore_job_run_twice_writes_one_version(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key = await create_key(client, await signed_up(), "test")
    analysis = await completed(client, app, key)
    rescore_id = (await rescore(client, key, analysis["id"], rubric="default")).json()["id"]
    every = runners(app)
    await every.drain()
    async with state_of_app(app).sessionmaker() as session:
        jobs = (await session.exec(select(Job).where(Job.kind == "analysis.rescore"))).all()
    job = next(j for j in jobs if j.payload["rescore_id"] == rescore_id)
    await every["rescoring"].handlers["analysis.rescore"](job)  # a duplicate run: the rescore is done
    assert await count(app, AnalysisResult, analysis_id=uuid.UUID(analysis["id"])) == 2


async def test_billing_stored_transcript_free_retranscription_metered(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    live = await create_key(client, await signed_up(), "live")
    analysis = await completed(client, app, live)
    aid = uuid.UUID(analysis["id"])
    assert await count(app, UsageRecord, analysis_id=aid) == 1
    assert (await rescore(client, live, analysis["id"], rubric="default")).status_code == 202
    await runners(app).drain()
    assert await count(app, UsageRecord, analysis_id=aid) == 1  # the stored transcript: not charged
    transcriber = FakeTranscriber()
    r = await rescore(client, live, analysis["id"], rubric="default", retranscribe=True)
    assert r.status_code == 202, r.text
    await runners(app, transcriber).drain()
    assert len(transcriber.calls) == 1
    done = (await client.get(f"/api/v1/rescores/{r.json()['id']}", headers=h(live))).json()
    assert done["status"] == "completed" and done["retranscribe"] is True
    async with state_of_app(app).sessionmaker() as session:
        records = (await session.exec(select(UsageRecord).where(UsageRecord.analysis_id == aid))).all()
        row = await session.get(Analysis, aid)
    assert len(records) == 2 and {r.rescore_id for r in records} == {None, uuid.UUID(done["id"])}
    assert all(abs(r.minutes - row.duration_ms / 60000) < 1e-9 for r in records)  # type: ignore[union-attr]
    usage = (await client.get("/api/v1/billing/usage", headers=h(live))).json()
    metrics = usage["metrics"]
    assert metrics["minutes_analyzed"] == pytest.approx(2 * row.duration_ms / 60000, abs=1e-3)  # type: ignore[union-attr]
    assert metrics["analysis_count"] == 1
    test = await create_key(client, await signed_up(), "test")
    mine = await completed(client, app, test)
    r = await rescore(client, test, mine["id"], rubric="default", retranscribe=True)
    assert r.status_code == 202
    await runners(app).drain()
    assert await count(app, UsageRecord, analysis_id=uuid.UUID(mine["id"])) == 0  # test mode: not billed
