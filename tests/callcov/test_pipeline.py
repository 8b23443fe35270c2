"""The analysis job through the real queue and database, with test doubles of the inference ports
(the real models are exercised in tests/deployments and the end-to-end test)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from conftest import SignUp, create_key, job_runners
from fastapi import FastAPI
from scoring.scoring_factory import ScriptedLLM, good_answer
from sqlalchemy import update
from sqlmodel import select
from test_submission import submit

from callcov.analyses.pipeline import FAILED_MESSAGE, SCORE_JOB
from callcov.inference.ports import (
    InferenceError,
    LLMOutputInvalid,
    LLMRequestRejected,
    LLMUnavailable,
    TranscriptionRequest,
)
from callcov.inference.transcript import Segment, Transcript, Word
from callcov.models import Analysis, Job
from callcov.state import state_of_app
from callcov.worker.wiring import Runners

pytestmark = pytest.mark.asyncio


def segment(speaker: str, text: str, start: float) -> Segment:
    words, t = [], start
    for token in text.split():
        words.append(Word(text=token, start=t, end=t + 0.3, probability=0.9))
        t += 0.35
    return Segment(
        speaker=speaker,
        channel=0 if speaker == "agent" else 1,
        text=text,
        start=start,
        end=t,
        confidence=0.9,
        words=words,
    )  # type: ignore[arg-type]


TRANSCRIPT = Transcript(
    language="en",
    duration_s=12.0,
    diarization="channels",
    model="double",
    segments=[
        segment("agent", "Hello, thank you for calling Acme Bank, my name is John.", 0.5),
        segment("agent", "This call may be recorded for quality purposes.", 4.0),
        segment("customer", "Hi John, I want to check my balance please.", 7.5),
    ],
)


class FakeTranscriber:
    """Test double of the Transcriber port: fails ``failures`` times, then returns TRANSCRIPT."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[TranscriptionRequest] = []

    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        self.calls.append(request)
        assert Path(request.audio_path).is_file()
        if self.failures:
            self.failures -= 1
            raise InferenceError("whisper busy")
        return TRANSCRIPT


def runner_for(app: FastAPI, transcriber: FakeTranscriber, llm: object = None, **worker: float) -> Runners:
    """The production runners of the analysis stages (``callcov.jobs``: transcription, then scoring)
    with a test double of the transcriber; ``drain()`` runs both."""
    runners = job_runners(app, transcriber, worker={"concurrency": 2, "lease_s": 30, **worker}, llm=llm)
    return runners.only("transcription", "scoring")


async def submitted(client: httpx.AsyncClient, signed_up: SignUp) -> tuple[str, str]:
    key = await create_key(client, await signed_up(), "test")
    r = await submit(client, key)
    assert r.status_code == 201
    return key, r.json()["id"]


async def job_of(app: FastAPI, analysis_id: str, kind: str = "analysis") -> Job:
    async with state_of_app(app).sessionmaker() as session:
        jobs = (await session.exec(select(Job).where(Job.kind == kind))).all()
    return next(job for job in jobs if job.payload["analysis_id"] == analysis_id)


async def make_due(app: FastAPI, job_id: uuid.UUID) -> None:
    async with state_of_app(app).sessionmaker() as session:
        await session.exec(update(Job).where(Job.id == job_id).values(run_after=Job.created_at))  # type: ignore[arg-type]
        await session.commit()


async def test_completes_once(client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp) -> None:
    key, analysis_id = await submitted(client, signed_up)
    transcriber = FakeTranscriber()
    await runner_for(app, transcriber).drain()
    body = (await client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": key})).json()
    assert body["status"] == "completed"
    assert body["transcript"]["text"].startswith("Agent: Hello, thank you for calling Acme Bank")
    results = body["results"]
    assert results["compliance"]["identity_verification"]["verified"] is True
    assert "call_recording_notice" in results["compliance"]["mandatory_disclosures"]["matched_disclosures"]
    assert body["metadata"]["completed_at"] and body["metadata"]["processing_time_ms"] is not None
    assert (await job_of(app, analysis_id)).status == "done"
    assert (await job_of(app, analysis_id, SCORE_JOB)).status == "done"
    # Running either stage's job again (a duplicate after a crash) changes nothing.
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    runners = runner_for(app, transcriber)
    await runners["transcription"].handlers["analysis"](await job_of(app, analysis_id))
    await runners["scoring"].handlers[SCORE_JOB](await job_of(app, analysis_id, SCORE_JOB))
    async with state_of_app(app).sessionmaker() as session:
        again = await session.get(Analysis, uuid.UUID(analysis_id))
    assert row is not None and again is not None and again.completed_at == row.completed_at
    assert len([c for c in transcriber.calls if c.audio_path.endswith(row.audio_uri.split(":")[-1])]) == 1


async def test_transient_failure_is_retried(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    _, analysis_id = await submitted(client, signed_up)
    runner = runner_for(app, FakeTranscriber(failures=1))
    await runner.drain()
    job = await job_of(app, analysis_id)
    assert job.status == "queued" and job.attempts == 1 and "whisper busy" in (job.last_error or "")
    await make_due(app, job.id)
    await runner.drain()
    assert (await job_of(app, analysis_id)).status == "done"


async def test_gives_up_and_fails_the_analysis(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key, analysis_id = await submitted(client, signed_up)
    job = await job_of(app, analysis_id)
    async with state_of_app(app).sessionmaker() as session:
        await session.exec(update(Job).where(Job.id == job.id).values(max_attempts=1))  # type: ignore[arg-type]
        await session.commit()
    await runner_for(app, FakeTranscriber(failures=5)).drain()
    body = (await client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": key})).json()
    assert body["status"] == "failed" and body["metadata"]["error_message"] == FAILED_MESSAGE
    assert "Traceback" not in body["metadata"]["error_message"]


async def test_missing_audio_fails_permanently(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key, analysis_id = await submitted(client, signed_up)
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    assert row is not None
    state_of_app(app).storage.path_of(row.audio_uri or "").unlink()
    await runner_for(app, FakeTranscriber()).drain()
    body = (await client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": key})).json()
    assert body["status"] == "failed" and "missing" in body["metadata"]["error_message"]
    assert (await job_of(app, analysis_id)).status == "failed"


async def full_analysis(client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp) -> tuple[str, str]:
    """A submitted analysis at the full level (a paid plan's: the LLM is asked the judgement checks)."""
    key, analysis_id = await submitted(client, signed_up)
    async with state_of_app(app).sessionmaker() as session:
        await session.exec(
            update(Analysis).where(Analysis.id == uuid.UUID(analysis_id)).values(analysis_level="full")  # type: ignore[arg-type]
        )
        await session.commit()
    return key, analysis_id


async def evaluation_of(app: FastAPI, client: httpx.AsyncClient, key: str, analysis_id: str) -> dict:
    body = (await client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": key})).json()
    assert body["status"] == "completed", body
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    assert row is not None
    evaluation = body["results"]["evaluation"]
    assert (row.llm_status, row.llm_reason) == (evaluation["llm"], evaluation["reason"])
    return evaluation


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            good_answer(),
            {"llm": "evaluated", "model": "scripted-test-llm", "attempts": 1, "chunks": 1, "reason": None},
        ),
        (
            LLMOutputInvalid("prose, not JSON"),
            {
                "llm": "degraded",
                "model": "scripted-test-llm",
                "attempts": 2,
                "chunks": 1,
                "reason": "LLM answer invalid after 2 attempt(s): invalid output: prose, not JSON",
            },
        ),
        (
            LLMRequestRejected("prompt over the context", status_code=400),
            {
                "llm": "degraded",
                "model": "scripted-test-llm",
                "attempts": 1,
                "chunks": 1,
                "reason": "rejected by the LLM endpoint: prompt over the context",
            },
        ),
    ],
    ids=["evaluated", "invalid-answers", "rejected"],
)
async def test_every_analysis_records_whether_the_llm_evaluated_it(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp, reply: object, expected: dict
) -> None:
    key, analysis_id = await full_analysis(client, app, signed_up)
    runners = job_runners(
        app, FakeTranscriber(), worker={"concurrency": 2, "lease_s": 30}, llm=ScriptedLLM(reply)
    )
    await runners.only("transcription", "scoring").drain()
    assert await evaluation_of(app, client, key, analysis_id) == expected


async def test_without_an_llm_the_analysis_says_so(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key, analysis_id = await full_analysis(client, app, signed_up)
    await runner_for(app, FakeTranscriber()).drain()
    expected = {
        "llm": "not_configured",
        "model": None,
        "attempts": 0,
        "chunks": 0,
        "reason": "no LLM configured",
    }
    assert await evaluation_of(app, client, key, analysis_id) == expected


async def test_an_llm_that_does_not_serve_the_model_is_retried_not_skipped(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    """A 404 for the model (a misconfigured deployment) must not complete the call on rules alone."""
    _, analysis_id = await full_analysis(client, app, signed_up)
    llm = ScriptedLLM(LLMUnavailable("HTTP 404: model not found", status_code=404))
    await runner_for(app, FakeTranscriber(), llm=llm).drain()
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    job = await job_of(app, analysis_id, SCORE_JOB)
    assert row is not None and row.status == "processing"
    assert job.status == "queued" and job.attempts == 1 and "404" in (job.last_error or "")


async def test_the_stages_are_separate_jobs(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    """Transcription ends by enqueueing the scoring job with the transcript: a call waiting for the
    LLM holds no transcription slot, and its transcription is kept."""
    _, analysis_id = await submitted(client, signed_up)
    runners = runner_for(app, FakeTranscriber())
    await runners["transcription"].drain()
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    assert row is not None and row.status == "processing"
    assert (await job_of(app, analysis_id)).status == "done"
    scoring = await job_of(app, analysis_id, SCORE_JOB)
    assert (
        scoring.status == "queued" and Transcript.model_validate(scoring.payload["transcript"]) == TRANSCRIPT
    )
    await runners["scoring"].drain()
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    assert row is not None and row.status == "completed" and row.transcriber_model == "double"


async def test_a_retried_scoring_does_not_transcribe_again(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    key, analysis_id = await full_analysis(client, app, signed_up)
    transcriber = FakeTranscriber()
    llm = ScriptedLLM(LLMUnavailable("HTTP 503: loading", status_code=503))
    runners = runner_for(app, transcriber, llm=llm)
    await runners["transcription"].drain()
    await runners["scoring"].drain()
    job = await job_of(app, analysis_id, SCORE_JOB)
    assert job.status == "queued" and job.attempts == 1
    llm.replies = [good_answer()]
    await make_due(app, job.id)
    await runners.drain()
    assert (await evaluation_of(app, client, key, analysis_id))["llm"] == "evaluated"
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    assert row is not None and row.audio_uri
    assert len([c for c in transcriber.calls if c.audio_uri == row.audio_uri]) == 1
