"""Issue 13, optional PII redaction: the submission fields (``redact_pii``, ``redact_pii_policies``),
their validation, the analysis object, and the transcription stage applying the policies before the
transcript is stored (the real submission, queue and database; the transcriber is a test double)."""

from __future__ import annotations

import json
import logging
from typing import Any, get_args

import httpx
import pytest
import pytest_asyncio
from conftest import SignUp, create_key
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import SQLModel
from test_pipeline import FakeTranscriber, runner_for, segment
from test_submission import WAV, audio_server, form  # noqa: F401  (audio_server: a fixture)

from callcov.analyses.submission import PiiPolicy
from callcov.inference.ports import TranscriptionRequest
from callcov.inference.transcript import Transcript
from callcov.scoring.pii import POLICIES
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio

HEARD = Transcript(
    language="en",
    duration_s=20.0,
    diarization="channels",
    model="double",
    segments=[
        segment("agent", "Hello, thank you for calling Acme Bank, my name is John.", 0.5),
        segment("agent", "This call may be recorded for quality purposes.", 4.0),
        segment("customer", "Hi John, my email is ana dot lima at gmail dot com.", 7.5),
        segment("customer", "And my phone number is 555 123 4567.", 12.0),
    ],
)


class Hears(FakeTranscriber):
    def __init__(self, transcript: Transcript = HEARD) -> None:
        super().__init__()
        self.transcript = transcript

    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        await super().transcribe(request)
        return self.transcript


async def post(client: httpx.AsyncClient, key: str, data: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/api/v1/analysis",
        data=form(**data),
        files={"audio_file": ("call.wav", WAV, "application/octet-stream")},
        headers={"X-API-Key": key},
    )


@pytest_asyncio.fixture
async def key(client: httpx.AsyncClient, signed_up: SignUp) -> str:
    return await create_key(client, await signed_up(), "test")


class TestSubmission:
    async def test_defaults_off(self, client: httpx.AsyncClient, key: str) -> None:
        body = (await post(client, key, {})).json()
        assert (body["redact_pii"], body["redact_pii_policies"], body["redact_audio"]) == (False, [], False)
        assert body["audio"]["redacted"] is False and body["audio"]["original_deleted"] is False

    async def test_redact_pii_alone_means_every_policy(self, client: httpx.AsyncClient, key: str) -> None:
        r = await post(client, key, {"redact_pii": "true"})
        assert r.status_code == 201, r.text
        assert r.json()["redact_pii"] is True and r.json()["redact_pii_policies"] == list(POLICIES)
        got = await client.get(f"/api/v1/analysis/{r.json()['id']}", headers={"X-API-Key": key})
        assert got.json()["redact_pii_policies"] == list(POLICIES)

    @pytest.mark.parametrize(
        "policies",
        ['["email_address", "person_name"]', "email_address, person_name", ["person_name", "email_address"]],
    )
    async def test_policies_as_json_comma_separated_or_repeated(
        self, client: httpx.AsyncClient, key: str, policies: Any
    ) -> None:
        r = await post(client, key, {"redact_pii": "true", "redact_pii_policies": policies})
        assert r.status_code == 201, r.text
        assert r.json()["redact_pii_policies"] == ["person_name", "email_address"]

    @pytest.mark.parametrize("redact_pii", [None, "false"])
    async def test_policies_need_redact_pii(
        self, client: httpx.AsyncClient, key: str, redact_pii: str | None
    ) -> None:
        data = {"redact_pii_policies": "person_name"} | ({"redact_pii": redact_pii} if redact_pii else {})
        r = await post(client, key, data)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "validation_error" and error["details"]["field"] == "redact_pii_policies"

    async def test_json_body(
        self,
        app_factory: Any,
        client: httpx.AsyncClient,
        key: str,
        audio_server: str,  # noqa: F811
    ) -> None:
        refused = await client.post(
            "/api/v1/analysis",
            json=form(audio_url=f"{audio_server}/call.wav", redact_pii_policies=["person_name"]),
            headers={"X-API-Key": key},
        )
        assert (
            refused.status_code == 400
            and refused.json()["error"]["details"]["field"] == "redact_pii_policies"
        )
        async with app_factory(network={"url_allow": ["127.0.0.1/32"]}) as allowed:
            r = await allowed.post(
                "/api/v1/analysis",
                json=form(
                    audio_url=f"{audio_server}/call.wav",
                    redact_pii=True,
                    redact_pii_policies=["date_of_birth", "banking_information"],
                    redact_audio=True,
                ),
                headers={"X-API-Key": key},
            )
        assert r.status_code == 201, r.text
        body = r.json()
        assert (
            body["redact_pii_policies"] == ["date_of_birth", "banking_information"]
            and body["redact_audio"] is True
        )

    async def test_unknown_policy_is_a_schema_error(self, client: httpx.AsyncClient, key: str) -> None:
        r = await post(client, key, {"redact_pii": "true", "redact_pii_policies": "person_name,shoe_size"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"

    async def test_documented(self, app: FastAPI) -> None:
        assert get_args(PiiPolicy) == POLICIES
        body = app.openapi()["paths"]["/api/v1/analysis"]["post"]["requestBody"]["content"]
        for media in ("multipart/form-data", "application/json"):
            schema = body[media]["schema"]
            assert {"redact_pii", "redact_pii_policies", "redact_audio"} <= set(schema["properties"])
            assert schema["dependentRequired"] == {"redact_pii_policies": ["redact_pii"]}


UNIQUE = Transcript(
    language="en",
    duration_s=20.0,
    diarization="channels",
    model="double",
    segments=[
        segment("agent", "Hello, my name is Zebulon. May I have your date of birth?", 0.5),
        segment(
            "customer", "the ninth of August nineteen sixty one, email zeb dot quill at gmail dot com", 5.0
        ),
        segment("customer", "I live at 77 Quillmore Avenue, call me on 555 987 6543.", 12.0),
    ],
)
SECRETS = ("zebulon", "quill", "6543", "sixty one", "quillmore")


class TestTranscriptionStage:
    async def test_nothing_of_the_pii_in_any_row_or_log(
        self, app: FastAPI, client: httpx.AsyncClient, key: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        r = await post(client, key, {"redact_pii": "true"})
        await runner_for(app, Hears(UNIQUE)).drain()
        body = (await client.get(f"/api/v1/analysis/{r.json()['id']}", headers={"X-API-Key": key})).json()
        assert body["status"] == "completed"
        assert [x["type"] for x in body["transcript"]["redactions"]] == [
            "person_name", "date_of_birth", "email_address", "location", "phone_number",
        ]  # fmt: skip
        async with state_of_app(app).sessionmaker() as session:
            rows = [
                str(tuple(map(str, row)))  # each value whole (a Row's repr truncates long ones)
                for table in SQLModel.metadata.sorted_tables
                for row in (await session.exec(text(f'SELECT * FROM "{table.name}"'))).all()  # type: ignore[call-overload]
            ]
        # The rows of this analysis (the drain also ran calls other tests left queued, unredacted).
        rows = [row for row in rows if body["id"] in row or body["id"].replace("-", "") in row]
        assert len(rows) >= 3  # the analysis and its two jobs
        logs = "\n".join(f"{rec.getMessage()} {rec.args!r}" for rec in caplog.records)
        for name, blob in {"analysis": json.dumps(body), "database": "\n".join(rows), "logs": logs}.items():
            assert [s for s in SECRETS if s in blob.lower()] == [], name

    async def analysed(
        self, app: FastAPI, client: httpx.AsyncClient, key: str, **data: str
    ) -> dict[str, Any]:
        r = await post(client, key, data)
        assert r.status_code == 201, r.text
        await runner_for(app, Hears()).drain()
        body = (await client.get(f"/api/v1/analysis/{r.json()['id']}", headers={"X-API-Key": key})).json()
        assert body["status"] == "completed", body
        return body

    async def test_the_stored_transcript_is_redacted(
        self, app: FastAPI, client: httpx.AsyncClient, key: str
    ) -> None:
        body = await self.analysed(app, client, key, redact_pii="true")
        text = body["transcript"]["text"]
        assert "John" not in text and "lima" not in text and "4567" not in text, text
        assert "my name is [PERSON_NAME]." in text and "Hi [PERSON_NAME]" in text
        assert "[EMAIL_ADDRESS]" in text and "[PHONE_NUMBER]" in text
        types = [r["type"] for r in body["transcript"]["redactions"]]
        assert types == ["person_name", "person_name", "email_address", "phone_number"]
        # The agent still identified themself: the marker stands where the name was.
        assert body["results"]["compliance"]["identity_verification"]["verified"] is True

    async def test_only_the_requested_policies(
        self, app: FastAPI, client: httpx.AsyncClient, key: str
    ) -> None:
        body = await self.analysed(app, client, key, redact_pii="true", redact_pii_policies="phone_number")
        text = body["transcript"]["text"]
        assert "John" in text and "gmail" in text and "[PHONE_NUMBER]" in text

    async def test_off_by_default(self, app: FastAPI, client: httpx.AsyncClient, key: str) -> None:
        body = await self.analysed(app, client, key)
        assert "John" in body["transcript"]["text"] and body["transcript"]["redactions"] == []
