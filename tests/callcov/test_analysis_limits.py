"""Bounds on the work one analysis can cause (issue 12, findings 4, 9, 10c and 12): the maximum call
duration at submission, the probed format and decode bound handed to the transcriber, an analysis
whose jobs keep crashing their workers ending ``failed`` with its webhook, and client metadata that
cannot overwrite the fields CallCov adds to ``metadata``."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable

import httpx
import pytest
from conftest import create_key, running, sign_up
from sqlalchemy import update
from sqlmodel import select
from test_pipeline import FakeTranscriber, job_of, runner_for
from test_submission import submit, tone_wav

from callcov.analyses.audio import probe_audio
from callcov.analyses.errors import AudioTooLong
from callcov.analyses.pipeline import FAILED_MESSAGE
from callcov.analyses.schemas import RESERVED_METADATA_KEYS
from callcov.config import Settings
from callcov.inference.audio import decode_limit_s
from callcov.inference.ports import InferenceCrashed
from callcov.kit.time import utcnow
from callcov.main import create_app
from callcov.models import Analysis, Job, WebhookEvent
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio

HOOK = "https://93.184.215.14/hook"


async def test_a_call_over_the_maximum_duration_is_refused(settings_factory: Callable[..., Settings]) -> None:
    app = create_app(settings_factory(audio={"max_duration_s": 5}))
    async with running(app) as client:
        key = await create_key(client, await sign_up(client, app), "test")
        fits = await submit(client, key, audio=tone_wav(4.0))
        assert fits.status_code == 201, fits.text
        root = state_of_app(app).settings.storage_root
        before = set(root.rglob("*"))
        refused = await submit(client, key, audio=tone_wav(6.0))
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "audio_too_long"
        assert error["details"] == {"duration_seconds": 6.0, "max_duration_seconds": 5.0}
        assert set(root.rglob("*")) == before  # the refused upload is not kept


async def test_the_probe_refuses_past_the_maximum_and_the_error_pickles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pickle

    path = tmp_path / "call.wav"
    path.write_bytes(tone_wav(3.0))
    assert probe_audio(path, max_duration_s=3.0).duration_s == 3.0
    with pytest.raises(AudioTooLong) as raised:
        probe_audio(path, max_duration_s=2.5)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (copy.code, copy.status_code, copy.details) == (
        "audio_too_long",
        400,
        {"duration_seconds": 3.0, "max_duration_seconds": 2.5},
    )


async def test_a_long_silent_flac_is_refused_at_submission(settings_factory: Callable[..., Settings]) -> None:
    """The report's case, scaled down: a small FLAC holding far more silence than the limit."""
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=8000, layout="mono")
        silence = np.zeros((1, 8000 * 60), dtype=np.int16)  # one minute
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    app = create_app(settings_factory(audio={"max_duration_s": 30}))
    async with running(app) as client:
        key = await create_key(client, await sign_up(client, app), "test")
        r = await submit(client, key, audio=buffer.getvalue())
        assert r.status_code == 400 and r.json()["error"]["code"] == "audio_too_long", r.text
        assert len(buffer.getvalue()) < 200_000


async def test_the_transcriber_gets_the_probed_format_and_a_decode_bound(
    client: httpx.AsyncClient, app, signed_up
) -> None:  # type: ignore[no-untyped-def]
    key = await create_key(client, await signed_up(), "test")
    r = await submit(client, key)
    assert r.status_code == 201
    transcriber = FakeTranscriber()
    await runner_for(app, transcriber).drain()
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(r.json()["id"]))
    assert row is not None
    [request] = [c for c in transcriber.calls if c.audio_uri == row.audio_uri]
    assert request.audio_format == "wav"
    assert request.max_duration_s == pytest.approx(decode_limit_s(2.0))
    assert 2.0 < decode_limit_s(2.0) <= 2.0 + 5 and math.isclose(decode_limit_s(3600.0), 3600 * 1.02)


async def test_an_analysis_whose_workers_keep_dying_fails_with_its_webhook(
    client: httpx.AsyncClient, app, signed_up
) -> None:  # type: ignore[no-untyped-def]
    """Its transcription job was running on two workers that died (two lease expiries): it is not run
    a third time; the analysis fails like any final failure, with its webhook event."""
    key = await create_key(client, await signed_up(), "test")
    r = await submit(client, key, webhook_url=HOOK)
    assert r.status_code == 201, r.text
    analysis_id = r.json()["id"]
    job = await job_of(app, analysis_id)
    async with state_of_app(app).sessionmaker() as session:
        await session.exec(
            update(Job)  # the state after the first crash and the second claim, whose worker died too
            .where(Job.id == job.id)  # type: ignore[arg-type]
            .values(status="running", attempts=2, crashes=1, locked_by="dead", lease_until=utcnow())
        )
        await session.commit()
    transcriber = FakeTranscriber()
    await runner_for(app, transcriber).drain()
    body = (await client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": key})).json()
    assert body["status"] == "failed" and body["metadata"]["error_message"] == FAILED_MESSAGE
    job = await job_of(app, analysis_id)
    assert (job.status, job.crashes) == ("failed", 2)
    async with state_of_app(app).sessionmaker() as session:
        events = (
            await session.exec(select(WebhookEvent).where(WebhookEvent.analysis_id == uuid.UUID(analysis_id)))
        ).all()
    assert [e.event_type for e in events] == ["analysis.failed"]
    assert not [c for c in transcriber.calls if c.audio_uri and analysis_id in c.audio_uri]


class CrashingTranscriber(FakeTranscriber):
    """The whisper replica dies on this call, every time (a decoder bomb, an out-of-memory kill)."""

    async def transcribe(self, request):  # type: ignore[no-untyped-def]
        self.calls.append(request)
        raise InferenceCrashed("ActorDiedError: the whisper replica died")


async def test_a_call_that_kills_the_transcriber_is_tried_twice_not_six_times(
    client: httpx.AsyncClient, app, signed_up
) -> None:  # type: ignore[no-untyped-def]
    key = await create_key(client, await signed_up(), "test")
    r = await submit(client, key)
    analysis_id = r.json()["id"]
    transcriber = CrashingTranscriber()
    runners = runner_for(app, transcriber)
    for _ in range(4):
        await runners.drain()
        job = await job_of(app, analysis_id)
        async with state_of_app(app).sessionmaker() as session:
            await session.exec(update(Job).where(Job.id == job.id).values(run_after=utcnow()))  # type: ignore[arg-type]
            await session.commit()
    async with state_of_app(app).sessionmaker() as session:
        row = await session.get(Analysis, uuid.UUID(analysis_id))
    assert row is not None and row.status == "failed"
    assert len([c for c in transcriber.calls if c.audio_uri == row.audio_uri]) == 2
    assert (await job_of(app, analysis_id)).status == "failed"


class TestReservedMetadata:
    """``metadata`` of an analysis also carries ``webhook_url``, ``completed_at``,
    ``processing_time_ms`` and ``error_message`` (CONTRACT.md §4): a client key of one of those names
    would be overwritten, so it is refused."""

    @pytest.mark.parametrize("name", ["completed_at", "webhook_url", "processing_time_ms", "error_message"])
    async def test_refused_in_a_form(self, client: httpx.AsyncClient, signed_up, name: str) -> None:  # type: ignore[no-untyped-def]
        key = await create_key(client, await signed_up(), "test")
        r = await submit(client, key, metadata=f'{{"{name}": "mine", "campaign": "x"}}')
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "validation_error" and error["details"] == {"key": name}
        assert name in error["message"]

    async def test_refused_in_json(self, client: httpx.AsyncClient, signed_up) -> None:  # type: ignore[no-untyped-def]
        key = await create_key(client, await signed_up(), "test")
        body = {
            "agent_id": "a",
            "contact_id": "c",
            "audio_url": "http://127.0.0.1:9/call.wav",  # never fetched: refused first
            "metadata": {"error_message": "none"},
        }
        r = await client.post("/api/v1/analysis", json=body, headers={"X-API-Key": key})
        assert r.status_code == 400 and r.json()["error"]["details"] == {"key": "error_message"}, r.text

    async def test_other_keys_come_back_unchanged(self, client: httpx.AsyncClient, signed_up) -> None:  # type: ignore[no-untyped-def]
        key = await create_key(client, await signed_up(), "test")
        r = await submit(client, key, metadata='{"completed": "no", "Completed_At": "kept"}')
        assert r.status_code == 201, r.text
        metadata = r.json()["metadata"]
        assert metadata["completed"] == "no" and metadata["Completed_At"] == "kept"
        assert metadata["completed_at"] is None
        assert set(RESERVED_METADATA_KEYS) <= set(metadata)
