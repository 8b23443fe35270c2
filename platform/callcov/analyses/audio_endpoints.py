"""GET /analysis/{id}/audio: the analysis' recording, for a browser's audio player (byte ranges).

What is served: the bleeped copy (``redact_audio``) where one exists; else the original, when the
submission did not ask for a bleeped copy and the original is kept. A submission that asked for one
never gets the original, also while the copy is being made (404 ``audio_not_available``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from callcov.analyses import repository
from callcov.analyses.errors import AnalysisNotFound, AudioNotAvailable, RangeNotSatisfiable
from callcov.auth.deps import AnyPrincipal
from callcov.db import SessionDep
from callcov.errors import ErrorBody, Unauthorized
from callcov.kit.byte_ranges import UnsatisfiableRange, byte_range
from callcov.models import Analysis
from callcov.state import StateDep

router = APIRouter(prefix="/analysis", tags=["analysis"], responses={401: Unauthorized.schema()})

MEDIA_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "webm": "audio/webm",
    "mpeg": "video/mpeg",
}
_CHUNK = 256 * 1024
_AUDIO = {"audio/*": {"schema": {"type": "string", "format": "binary"}}}
_RANGE_HEADERS = {
    "Accept-Ranges": {"schema": {"type": "string"}, "description": "`bytes`"},
    "Content-Range": {"schema": {"type": "string"}, "description": "`bytes first-last/size`"},
}
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": _AUDIO, "description": "The whole recording", "headers": _RANGE_HEADERS},
    206: {"content": _AUDIO, "description": "The requested byte range", "headers": _RANGE_HEADERS},
    404: {
        "model": ErrorBody,
        "description": "Unknown analysis, or another account's or mode's (not_found); no recording to "
        "serve (audio_not_available)",
    },
    416: {
        "model": ErrorBody,
        "description": f"{RangeNotSatisfiable.default_message} (range_not_satisfiable); "
        "`Content-Range: bytes */size`",
    },
}


def _served(row: Analysis) -> tuple[str, str]:
    """(storage URI, media type) of the recording to serve; AudioNotAvailable when there is none."""
    if row.redacted_audio_uri is not None:
        return row.redacted_audio_uri, "audio/wav"
    if row.redact_audio:
        raise AudioNotAvailable("The redacted recording does not exist (yet)")
    if row.original_audio_deleted_at is not None or not row.audio_uri:
        raise AudioNotAvailable("The recording was deleted")
    return row.audio_uri, MEDIA_TYPES.get(row.audio_format or "", "application/octet-stream")


async def _read(path: Path, first: int, last: int) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        await asyncio.to_thread(file.seek, first)
        left = last - first + 1
        while left > 0:
            chunk = await asyncio.to_thread(file.read, min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@router.get("/{analysis_id}/audio", response_class=StreamingResponse, responses=RESPONSES)
async def get_audio(
    analysis_id: uuid.UUID,
    principal: AnyPrincipal,
    session: SessionDep,
    state: StateDep,
    range_header: Annotated[
        str | None,
        Header(alias="Range", description="One byte range: `bytes=0-1023`, `bytes=1024-`, `bytes=-500`"),
    ] = None,
) -> StreamingResponse:
    """The recording: its bleeped copy when `redact_audio` was asked (1 kHz tone over every redacted
    span), else the original while it is kept. Answers byte ranges (206) so players can seek."""
    row = await repository.get(session, principal, analysis_id)
    if row is None:
        raise AnalysisNotFound()
    uri, media_type = _served(row)
    try:
        path = await state.storage.fetch(uri)
    except FileNotFoundError as exc:
        raise AudioNotAvailable("The stored recording is missing") from exc
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store"}
    try:
        wanted = byte_range(range_header, size)
    except UnsatisfiableRange as exc:
        raise RangeNotSatisfiable(
            str(exc), details={"size_bytes": size}, headers={**headers, "Content-Range": f"bytes */{size}"}
        ) from exc
    first, last = wanted if wanted is not None else (0, size - 1)
    headers["Content-Length"] = str(last - first + 1)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        _read(path, first, last),
        status_code=206 if wanted is not None else 200,
        media_type=media_type,
        headers=headers,
    )
