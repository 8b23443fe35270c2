"""The transcription stage's audio redaction (``redact_audio``): the bleeped copy of the recording
(``bleep.py``) kept in the storage backend, and the original deleted afterwards when
``CALLCOV_STORAGE__KEEP_ORIGINAL_AUDIO`` is false.

Order matters. The bleeped copy is written before the transaction that finishes the transcription
job, under a key derived from the analysis id (a retried job overwrites it), and its URI is recorded
in that transaction. The original is deleted only after that commit, when no retry of the
transcription can need it; scoring never reads the audio. A deletion that fails (or a worker that
dies first) is done again at the start of the scoring stage, so the original does not outlive the
analysis' processing."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses.bleep import bleep_intervals, write_bleeped
from callcov.inference.transcript import Transcript
from callcov.kit.time import utcnow
from callcov.models import Analysis
from callcov.storage.objects import Storage

logger = logging.getLogger("callcov.pipeline")
_CHUNK = 1024 * 1024


def redacted_key(analysis_id: uuid.UUID) -> str:
    return f"{analysis_id.hex}.redacted.wav"


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            yield chunk


async def store_bleeped(
    storage: Storage, analysis: Analysis, source: Path, transcript: Transcript, max_duration_s: float | None
) -> str:
    """Write the bleeped copy of ``source`` (the spans of ``transcript.redactions``) to storage; its
    URI. ``BleepFailed`` when the recording cannot be decoded."""
    intervals = bleep_intervals((r.start, r.end) for r in transcript.redactions)
    with tempfile.TemporaryDirectory(prefix="callcov-bleep-") as tmp:
        out = Path(tmp) / "redacted.wav"
        await asyncio.to_thread(
            write_bleeped,
            source,
            out,
            intervals,
            audio_format=analysis.audio_format,
            max_duration_s=max_duration_s,
        )
        stored = await storage.save(redacted_key(analysis.id), _chunks(out), max_bytes=out.stat().st_size)
    return stored.uri


async def drop_original(
    storage: Storage, sessionmaker: async_sessionmaker[AsyncSession], analysis: Analysis
) -> None:
    """Delete the original recording of an analysis whose bleeped copy exists, and record when.
    Never raises: a failure is logged and the scoring stage tries again."""
    if analysis.redacted_audio_uri is None or analysis.original_audio_deleted_at is not None:
        return
    try:
        if analysis.audio_uri:
            await storage.delete(analysis.audio_uri)
        async with sessionmaker() as session:
            await session.exec(
                update(Analysis)
                .where(col(Analysis.id) == analysis.id, col(Analysis.original_audio_deleted_at).is_(None))
                .values(original_audio_deleted_at=utcnow())
            )
            await session.commit()
    except Exception:
        logger.warning(
            "deleting the original recording of %s failed; retried later", analysis.id, exc_info=True
        )
