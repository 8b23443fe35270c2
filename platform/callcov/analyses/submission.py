"""Reading a submission: the form or JSON fields, and the audio (an upload streamed to storage, or a
URL downloaded with the same limits and SSRF checks), probed before anything is created."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callcov.analyses.audio import AudioInfo, probe_audio_async
from callcov.analyses.download import stream_download
from callcov.analyses.errors import FileTooLarge
from callcov.analyses.multipart import multipart_events
from callcov.analyses.schemas import RESERVED_METADATA_KEYS
from callcov.config import NetworkSettings, StorageSettings
from callcov.errors import BadRequest
from callcov.kit.metadata import validate_metadata
from callcov.kit.text import SafeStr
from callcov.rubrics.refs import REF_PATTERN, parse_ref
from callcov.scoring.pii import POLICIES
from callcov.scoring.rubric import RubricInvalid, RubricNotFound, load_rubric
from callcov.storage.objects import Storage, StoredAudio
from callcov.webhooks.sender import check_webhook_url

# Room for the form fields and part headers around an upload of the maximum size.
MULTIPART_OVERHEAD = 1024 * 1024


class SubmissionInvalid(BadRequest):
    code = "validation_error"


PiiPolicy = Literal[
    "person_name", "phone_number", "email_address", "location", "date_of_birth", "banking_information"
]


class SubmissionFields(BaseModel):
    # A schema-level statement of the rule ``_validated`` enforces (400 validation_error).
    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {"redact_pii_policies": ["redact_pii"]}}
    )

    agent_id: SafeStr = Field(min_length=1, max_length=255)
    contact_id: SafeStr = Field(min_length=1, max_length=255)
    audio_url: SafeStr | None = Field(default=None, max_length=2048)
    webhook_url: SafeStr | None = Field(default=None, max_length=2048)
    metadata: dict[str, Any] | None = None
    call_direction: Literal["inbound", "outbound"] | None = None
    call_timestamp: datetime | None = Field(default=None, description="ISO 8601 or Unix seconds")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
    rubric: str | None = Field(
        default=None,
        pattern=REF_PATTERN,
        description="A built-in rubric (`default`, `default@2`) or the account's (`rub_…`, `rub_…@3`).",
    )
    redact_pii: bool = Field(
        default=False, description="Also redact the PII of `redact_pii_policies` (all of them if omitted)."
    )
    redact_pii_policies: list[PiiPolicy] | None = Field(
        default=None,
        max_length=len(POLICIES),
        description="Needs `redact_pii: true`. In multipart forms: a JSON array, comma-separated values "
        "or the field repeated.",
    )
    redact_audio: bool = Field(
        default=False,
        description="Keep a copy of the recording with a 1 kHz tone over every redacted span "
        "(GET /analysis/{id}/audio).",
    )

    @property
    def pii_policies(self) -> list[str]:
        """The policies to apply: none without ``redact_pii``, all when it names none."""
        if not self.redact_pii:
            return []
        asked = set(self.redact_pii_policies or POLICIES)
        return [p for p in POLICIES if p in asked]

    @field_validator("call_timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True)
class Submission:
    fields: SubmissionFields
    audio: StoredAudio
    info: AudioInfo


def _validated(raw: dict[str, Any], loc: str) -> SubmissionFields:
    try:
        fields = SubmissionFields.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": (loc, *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc
    fields.metadata = validate_metadata(fields.metadata, reserved=RESERVED_METADATA_KEYS)
    if fields.redact_pii_policies is not None and not fields.redact_pii:
        raise SubmissionInvalid(
            "redact_pii_policies needs redact_pii: true",
            details={"field": "redact_pii_policies", "requires": "redact_pii"},
        )
    ref = parse_ref(fields.rubric) if fields.rubric else None
    if ref is not None and not ref.is_account:  # an account's rubric is checked with the account
        try:
            load_rubric(ref.id, ref.version)
        except (RubricNotFound, RubricInvalid) as exc:
            raise SubmissionInvalid(
                f"Unknown rubric '{fields.rubric}'", details={"rubric": fields.rubric}
            ) from exc
    return fields


async def _json_fields(request: Request) -> SubmissionFields:
    body = await request.body()
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SubmissionInvalid("The request body is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise SubmissionInvalid("The request body must be a JSON object")
    return _validated(raw, "body")


def _form_value(name: str, value: str) -> Any:
    if name == "redact_pii_policies" and value:
        if value.lstrip().startswith("["):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise SubmissionInvalid(
                    "redact_pii_policies must be a JSON array or comma-separated"
                ) from exc
        return [p.strip() for p in value.split(",") if p.strip()]
    if name == "metadata" and value:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise SubmissionInvalid(
                "metadata must be a JSON object (sent as a string in multipart forms)"
            ) from exc
    return value or None


async def read_submission(
    request: Request,
    storage: Storage,
    limits: StorageSettings,
    network: NetworkSettings,
    *,
    max_duration_s: float | None = None,
) -> Submission:
    """Parse, store and probe; on any failure the stored audio is removed again. ``limits`` gives the
    upload size and download time limits, ``network`` the URL allow-list, ``max_duration_s`` the
    maximum call duration."""
    content_type = request.headers.get("content-type", "")
    limit = limits.max_upload_bytes
    key = uuid.uuid4().hex
    stored: StoredAudio | None = None
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise FileTooLarge(max_size_bytes=limit)
    try:
        if content_type.startswith("multipart/form-data"):
            fields, stored = await _read_form(request, storage, limit, key, content_type)
        elif content_type.startswith("application/json") or not content_type:
            fields = await _json_fields(request)
        else:
            raise SubmissionInvalid("Send multipart/form-data (audio_file) or application/json (audio_url)")
        if (stored is None) == (fields.audio_url is None):
            raise SubmissionInvalid("Send exactly one of audio_file and audio_url")
        if fields.webhook_url:
            await check_webhook_url(fields.webhook_url, network)
        if stored is None:
            audio = _download(fields.audio_url or "", limits, network)
            stored = await storage.save(key, audio, max_bytes=limit)
        info = await probe_audio_async(storage.path_of(stored.uri), max_duration_s=max_duration_s)
        return Submission(fields=fields, audio=stored, info=info)
    except BaseException:
        if stored is not None:
            await storage.delete(stored.uri)
        raise


async def _download(url: str, limits: StorageSettings, network: NetworkSettings) -> AsyncIterator[bytes]:
    async for chunk in stream_download(
        url,
        allow=network.url_allow,
        max_bytes=limits.max_upload_bytes,
        timeout_s=limits.download_timeout_s,
    ):
        yield chunk


async def _read_form(
    request: Request, storage: Storage, max_bytes: int, key: str, content_type: str
) -> tuple[SubmissionFields, StoredAudio | None]:
    raw: dict[str, Any] = {}
    stored: StoredAudio | None = None
    events = multipart_events(content_type, request.stream())
    async for event in events:
        if event.kind == "field":
            value = _form_value(event.name, event.value)
            repeated = raw.get(event.name)
            if event.name == "redact_pii_policies" and isinstance(repeated, list) and isinstance(value, list):
                value = repeated + value  # the field repeated: one policy each
            raw[event.name] = value
        elif event.kind == "file_start" and event.name == "audio_file" and stored is None:
            stored = await storage.save(key, _file_data(events), max_bytes=max_bytes)
        elif event.kind == "file_start":
            async for _ in _file_data(events):  # an unexpected file part: read past it
                pass
    try:
        return _validated(raw, "body"), stored
    except Exception:
        if stored is not None:
            await storage.delete(stored.uri)
        raise


async def _file_data(events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for event in events:
        if event.kind == "file_data":
            yield event.data
        elif event.kind == "file_end":
            return
