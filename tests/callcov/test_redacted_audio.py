"""Issue 13, audio redaction (``redact_audio``): the transcription stage writes a copy of the recording
with a 1 kHz tone over every redacted span (the original speech elsewhere, sample for sample), the
original is deleted afterwards when ``CALLCOV_STORAGE__KEEP_ORIGINAL_AUDIO`` is false, and
``GET /analysis/{id}/audio`` serves it with byte ranges, scoped like every analysis route. The
recording is espeak-ng speech (tests/speech.py); the transcriber is a test double whose word times
are the synthesized turns' times."""

from __future__ import annotations

import io
import uuid
import wave
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
import pytest_asyncio
from conftest import S3_BUCKET, SignUp, create_key, running, s3_server
from fastapi import FastAPI
from speech import CallTruth, synthesize_call
from test_pipeline import FakeTranscriber, job_of, runner_for
from test_submission import form

from callcov.analyses.bleep import MARGIN_S, TONE_HZ
from callcov.config import Settings
from callcov.inference.ports import TranscriptionRequest
from callcov.inference.transcript import Segment, Transcript, Word
from callcov.jobs import build_job_runners
from callcov.main import create_app
from callcov.models import Analysis
from callcov.state import state_of_app
from callcov.worker.wiring import Runners

pytestmark = pytest.mark.asyncio

TURNS = (
    ("agent", "Thank you for calling Acme Bank. Can I take the card number?"),
    ("customer", "four one one one, one one one one, one one one one, one one one one"),
    ("agent", "Thank you, that is all I need today."),
)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> CallTruth:
    return synthesize_call(TURNS, tmp_path_factory.mktemp("speech") / "call.wav", stereo=True)


def heard(truth: CallTruth, texts: dict[int, str] | None = None) -> Transcript:
    """What a transcriber would hear: each turn's words (or ``texts[i]``) spread over the turn's
    audible speech."""
    segments = []
    for i, turn in enumerate(truth.turns):
        turn = replace(turn, text=(texts or {}).get(i, turn.text))
        tokens = turn.text.split()
        step = (turn.end - turn.start) / len(tokens)
        words = [
            Word(
                text=t,
                start=round(turn.start + i * step, 3),
                end=round(turn.start + (i + 1) * step, 3),
                probability=0.9,
            )
            for i, t in enumerate(tokens)
        ]
        segments.append(
            Segment(
                speaker=turn.role,
                channel=turn.channel,
                text=turn.text,
                start=turn.start,
                end=turn.end,
                confidence=0.9,
                words=words,
            )  # type: ignore[arg-type]
        )
    return Transcript(
        language="en", duration_s=truth.duration_s, segments=segments, diarization="channels", model="double"
    )


class Hears(FakeTranscriber):
    def __init__(self, transcript: Transcript) -> None:
        super().__init__()
        self.transcript = transcript

    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        await super().transcribe(request)
        return self.transcript


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        return frames.reshape(-1, wav.getnchannels()), wav.getframerate()


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest_asyncio.fixture
async def key(client: httpx.AsyncClient, signed_up: SignUp) -> str:
    return await create_key(client, await signed_up(), "test")


async def submit(client: httpx.AsyncClient, key: str, audio: bytes, **fields: str) -> str:
    r = await client.post(
        "/api/v1/analysis",
        data=form(**fields),
        files={"audio_file": ("call.wav", audio, "application/octet-stream")},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def analysis(client: httpx.AsyncClient, key: str, analysis_id: str) -> dict[str, Any]:
    return (await client.get(f"/api/v1/analysis/{analysis_id}", headers={"X-API-Key": key})).json()


def runners_keeping(app: FastAPI, transcriber: FakeTranscriber, *, keep_original: bool) -> Runners:
    state = state_of_app(app)
    settings = state.settings.model_copy(
        update={"storage": state.settings.storage.model_copy(update={"keep_original_audio": keep_original})}
    )
    return build_job_runners(state.sessionmaker, settings, transcriber=transcriber, llm=None).only(
        "transcription", "scoring"
    )


async def row(app: FastAPI, analysis_id: str) -> Analysis:
    async with state_of_app(app).sessionmaker() as session:
        found = await session.get(Analysis, uuid.UUID(analysis_id))
    assert found is not None
    return found


class TestBleepedCopy:
    async def test_tone_over_the_redacted_span_and_the_speech_elsewhere(
        self, app: FastAPI, client: httpx.AsyncClient, key: str, speech: CallTruth
    ) -> None:
        original = speech.path.read_bytes()
        analysis_id = await submit(client, key, original, redact_audio="true")
        await runner_for(app, Hears(heard(speech))).drain()
        body = await analysis(client, key, analysis_id)
        assert body["status"] == "completed" and body["redact_audio"] is True
        assert body["audio"]["redacted"] is True and body["audio"]["original_deleted"] is False
        [span] = body["transcript"]["redactions"]
        assert span["type"] == "credit_card"

        r = await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert r.headers["accept-ranges"] == "bytes" and int(r.headers["content-length"]) == len(r.content)
        bleeped, rate = read_wav(r.content)
        source, source_rate = read_wav(original)
        assert rate == source_rate and bleeped.shape == source.shape and bleeped.shape[1] == 2

        a, b = round((span["start"] - MARGIN_S) * rate), round((span["end"] + MARGIN_S) * rate)
        inside = bleeped[a:b]
        for channel in range(2):  # the tone on every channel, the agent's silent one included
            assert abs(peak_hz(inside[:, channel], rate) - TONE_HZ) < 5
            assert np.sqrt(np.mean(inside[:, channel].astype(np.float64) ** 2)) > 5000
        assert np.abs(source[a:b, 1]).max() > 2000  # there was speech to hide
        # Everywhere else the original, sample for sample, speech included.
        assert np.array_equal(bleeped[:a], source[:a]) and np.array_equal(bleeped[b:], source[b:])
        agent = speech.turns[0]
        spoken = bleeped[round(agent.start * rate) : round(agent.end * rate), 0].astype(np.float64)
        assert np.sqrt(np.mean(spoken**2)) > 500 and abs(peak_hz(spoken, rate) - TONE_HZ) > 50
        # The original is kept by default.
        stored = await row(app, analysis_id)
        assert state_of_app(app).storage.path_of(stored.audio_uri or "").is_file()

    async def test_pii_spans_are_bleeped_too(
        self, app: FastAPI, client: httpx.AsyncClient, key: str, speech: CallTruth
    ) -> None:
        # The agent's last turn, heard as naming themself.
        transcript = heard(speech, {2: "Thank you, this is Maria, that is all I need today."})
        analysis_id = await submit(
            client, key, speech.path.read_bytes(), redact_audio="true", redact_pii="true"
        )
        await runner_for(app, Hears(transcript)).drain()
        body = await analysis(client, key, analysis_id)
        spans = body["transcript"]["redactions"]
        assert [s["type"] for s in spans] == ["credit_card", "person_name"]
        bleeped, rate = read_wav(
            (await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key})).content
        )
        name = spans[1]
        inside = bleeped[round(name["start"] * rate) : round(name["end"] * rate), 1]
        assert abs(peak_hz(inside, rate) - TONE_HZ) < 5

    async def test_the_original_without_redact_audio(
        self, app: FastAPI, client: httpx.AsyncClient, key: str, speech: CallTruth
    ) -> None:
        original = speech.path.read_bytes()
        analysis_id = await submit(client, key, original)
        r = await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key})
        assert r.status_code == 200 and r.content == original and r.headers["content-type"] == "audio/wav"

    async def test_never_the_original_when_a_copy_was_asked(
        self, client: httpx.AsyncClient, key: str, speech: CallTruth
    ) -> None:
        analysis_id = await submit(client, key, speech.path.read_bytes(), redact_audio="true")
        r = await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key})
        assert r.status_code == 404 and r.json()["error"]["code"] == "audio_not_available"


class TestOriginalDeleted:
    async def test_deleted_after_the_transcription_and_scoring_still_runs(
        self, app: FastAPI, client: httpx.AsyncClient, key: str, speech: CallTruth
    ) -> None:
        analysis_id = await submit(client, key, speech.path.read_bytes(), redact_audio="true")
        transcriber = Hears(heard(speech))
        runners = runners_keeping(app, transcriber, keep_original=False)
        await runners["transcription"].drain()
        stored = await row(app, analysis_id)
        assert stored.original_audio_deleted_at is not None and stored.redacted_audio_uri is not None
        assert not state_of_app(app).storage.path_of(stored.audio_uri or "").exists()
        # A duplicate run of the transcription job (its worker died after the commit) does not fail
        # the analysis for want of the original.
        await runners["transcription"].handlers["analysis"](await job_of(app, analysis_id))
        await runners["scoring"].drain()
        body = await analysis(client, key, analysis_id)
        assert body["status"] == "completed" and body["audio"]["original_deleted"] is True
        assert len([c for c in transcriber.calls if c.audio_uri == stored.audio_uri]) == 1
        r = await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key})
        assert r.status_code == 200 and read_wav(r.content)[0].shape[1] == 2

    async def test_a_failed_deletion_is_done_by_the_scoring_stage(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        key: str,
        speech: CallTruth,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from callcov.storage.objects import LocalStorage

        analysis_id = await submit(client, key, speech.path.read_bytes(), redact_audio="true")
        runners = runners_keeping(app, Hears(heard(speech)), keep_original=False)
        real_delete = LocalStorage.delete

        async def broken(self: LocalStorage, uri: str) -> None:
            raise OSError("store unavailable")

        monkeypatch.setattr(LocalStorage, "delete", broken)
        await runners["transcription"].drain()
        stored = await row(app, analysis_id)
        assert (
            stored.original_audio_deleted_at is None
            and Path(state_of_app(app).storage.path_of(stored.audio_uri or "")).is_file()
        )
        monkeypatch.setattr(LocalStorage, "delete", real_delete)
        await runners["scoring"].drain()
        stored = await row(app, analysis_id)
        assert stored.status == "completed" and stored.original_audio_deleted_at is not None
        assert not state_of_app(app).storage.path_of(stored.audio_uri or "").exists()

    async def test_kept_without_redact_audio(
        self, app: FastAPI, client: httpx.AsyncClient, key: str, speech: CallTruth
    ) -> None:
        analysis_id = await submit(client, key, speech.path.read_bytes())
        await runners_keeping(app, Hears(heard(speech)), keep_original=False).drain()
        stored = await row(app, analysis_id)
        assert stored.status == "completed" and stored.original_audio_deleted_at is None
        assert state_of_app(app).storage.path_of(stored.audio_uri or "").is_file()


class TestRanges:
    @pytest_asyncio.fixture
    async def served(self, client: httpx.AsyncClient, key: str, speech: CallTruth) -> tuple[str, bytes]:
        original = speech.path.read_bytes()
        return await submit(client, key, original), original

    @pytest.mark.parametrize(
        ("header", "first", "last"),
        [
            ("bytes=0-99", 0, 99),
            ("bytes=1000-1999", 1000, 1999),
            ("bytes=-500", -500, None),
            ("bytes=4000-", 4000, None),
        ],
    )
    async def test_partial_content(
        self,
        client: httpx.AsyncClient,
        key: str,
        served: tuple[str, bytes],
        header: str,
        first: int,
        last: int | None,
    ) -> None:
        analysis_id, original = served
        size = len(original)
        r = await client.get(
            f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key, "Range": header}
        )
        assert r.status_code == 206, r.text
        start = first if first >= 0 else size + first
        end = last if last is not None else size - 1
        assert r.content == original[start : end + 1]
        assert r.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert r.headers["content-length"] == str(end - start + 1) and r.headers["accept-ranges"] == "bytes"

    async def test_a_range_past_the_end_is_clipped(
        self, client: httpx.AsyncClient, key: str, served: tuple[str, bytes]
    ) -> None:
        analysis_id, original = served
        size = len(original)
        r = await client.get(
            f"/api/v1/analysis/{analysis_id}/audio",
            headers={"X-API-Key": key, "Range": f"bytes={size - 10}-{size + 100}"},
        )
        assert r.status_code == 206 and r.content == original[-10:]

    @pytest.mark.parametrize(
        "header", ["bytes={size}-", "bytes=50-10", "bytes=0-1,5-9", "bytes=abc", "bytes=-0", "bytes=-"]
    )
    async def test_unsatisfiable(
        self, client: httpx.AsyncClient, key: str, served: tuple[str, bytes], header: str
    ) -> None:
        analysis_id, original = served
        r = await client.get(
            f"/api/v1/analysis/{analysis_id}/audio",
            headers={"X-API-Key": key, "Range": header.format(size=len(original))},
        )
        assert r.status_code == 416, r.text
        assert r.json()["error"]["code"] == "range_not_satisfiable"
        assert r.headers["content-range"] == f"bytes */{len(original)}"

    async def test_another_unit_gets_the_whole_file(
        self, client: httpx.AsyncClient, key: str, served: tuple[str, bytes]
    ) -> None:
        analysis_id, original = served
        r = await client.get(
            f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key, "Range": "items=0-1"}
        )
        assert r.status_code == 200 and r.content == original


class TestScope:
    async def test_another_account_or_mode_gets_404(
        self, client: httpx.AsyncClient, signed_up: SignUp, key: str, speech: CallTruth
    ) -> None:
        analysis_id = await submit(client, key, speech.path.read_bytes())
        other = await create_key(client, await signed_up(), "test")
        r = await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": other})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (
            await client.get(f"/api/v1/analysis/{uuid.uuid4()}/audio", headers={"X-API-Key": key})
        ).status_code == 404

    async def test_the_same_account_in_the_other_mode_gets_404(
        self, client: httpx.AsyncClient, signed_up: SignUp, speech: CallTruth
    ) -> None:
        account = await signed_up()
        test_key, live_key = (
            await create_key(client, account, "test"),
            await create_key(client, account, "live"),
        )
        analysis_id = await submit(client, test_key, speech.path.read_bytes())
        assert (
            await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": live_key})
        ).status_code == 404
        assert (
            await client.get(f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": test_key})
        ).status_code == 200
        assert (await client.get(f"/api/v1/analysis/{analysis_id}/audio")).status_code == 401


async def test_documented(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/api/v1/analysis/{analysis_id}/audio"]["get"]
    assert {"200", "206", "401", "404", "416", "429"} <= set(operation["responses"])


async def test_in_an_s3_bucket(
    settings_factory: Callable[..., Settings], signed_up: SignUp, client: httpx.AsyncClient, speech: CallTruth
) -> None:
    """The bleeped copy goes to the bucket, the original leaves it, and the copy is served from it."""
    key = await create_key(client, await signed_up(), "test")
    with s3_server() as endpoint:
        storage = {
            "backend": "s3",
            "s3_bucket": S3_BUCKET,
            "s3_endpoint_url": endpoint,
            "keep_original_audio": False,
        }
        app = create_app(settings_factory(storage=storage))
        async with running(app) as s3_client:
            analysis_id = await submit(s3_client, key, speech.path.read_bytes(), redact_audio="true")
            stored = await row(app, analysis_id)
            await runner_for(app, Hears(heard(speech))).drain()
            bucket = boto3.client("s3", endpoint_url=endpoint)
            keys = {o["Key"] for o in bucket.list_objects_v2(Bucket=S3_BUCKET).get("Contents", [])}
            assert f"audio/{uuid.UUID(analysis_id).hex}.redacted.wav" in keys
            assert (stored.audio_uri or "").rsplit("/", 1)[1] not in {k.rsplit("/", 1)[1] for k in keys}
            r = await s3_client.get(
                f"/api/v1/analysis/{analysis_id}/audio", headers={"X-API-Key": key, "Range": "bytes=0-11"}
            )
            assert r.status_code == 206 and r.content[:4] == b"RIFF" and r.content[8:12] == b"WAVE"
