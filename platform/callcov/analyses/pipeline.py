"""The analysis, in two pipelined stages, each its own job kind with its own runner and slots:

1. ``analysis`` (transcription): transcribe the stored audio, redact it (card numbers, SSNs and
   accounts never reach the database, nor the PII the submission asked to redact), write the bleeped
   copy of the recording when asked (``redacted_audio.py``), then, in one transaction, finish this
   job and enqueue the ``analysis.score`` job that carries the transcript. The original recording
   may be deleted only after that commit. A call waiting for the LLM holds
   no transcription slot, and a retried (or released) scoring never transcribes again.
2. ``analysis.score`` (scoring): score the transcript, record the result once.

Idempotent: an analysis that is no longer ``processing`` is skipped, and the final update only
applies to a ``processing`` row, so a job that runs twice (a crashed worker's lease expired while
it was finishing) still completes the analysis exactly once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses import events
from callcov.analyses.bleep import BleepFailed
from callcov.analyses.redacted_audio import drop_original, store_bleeped
from callcov.billing import refunds
from callcov.inference.audio import decode_limit_s
from callcov.inference.ports import (
    InferenceCrashed,
    InferenceError,
    LLMClient,
    Transcriber,
    TranscriptionRequest,
)
from callcov.inference.transcript import Transcript
from callcov.kit import metrics
from callcov.kit.time import utcnow
from callcov.models import Analysis, Job
from callcov.rubrics import service as rubrics
from callcov.scoring.redaction import redact_transcript
from callcov.scoring.rubric import RubricInvalid, RubricNotFound
from callcov.scoring.scorer import ScoringResult, score
from callcov.scoring.verdicts import failed_checks
from callcov.storage.objects import Storage
from callcov.worker import queue
from callcov.worker.runner import PermanentError, RetryableError, Settled, WorkerCrashed, payload_id

logger = logging.getLogger("callcov.pipeline")

FAILED_MESSAGE = "The recording could not be processed. Contact support with the analysis id."
SCORE_JOB = (
    "analysis.score"  # the second stage; the first is service.ANALYSIS_JOB, which a submission enqueues
)


UNDECODABLE = "The recording could not be decoded for transcription."


async def transcribe_recording(
    transcriber: Transcriber, analysis: Analysis, path: Path, max_duration_s: float | None
) -> Transcript:
    """The transcriber's transcript of ``analysis``' recording at ``path``, its failures as the
    runner's (``ValueError``: the audio cannot be decoded, it never will)."""
    request = TranscriptionRequest(
        audio_path=str(path),
        audio_uri=analysis.audio_uri,
        language=analysis.language,
        audio_format=analysis.audio_format,
        max_duration_s=max_duration_s,
    )
    try:
        return await transcriber.transcribe(request)
    except InferenceCrashed as exc:  # the replica died on this call: it may be the call's doing
        raise WorkerCrashed(str(exc)) from exc
    except InferenceError as exc:
        raise RetryableError(str(exc)) from exc


def decode_limit(analysis: Analysis, max_duration_s: float | None) -> float | None:
    """How much audio the transcriber may decode: what the submission probed (and billed), plus
    a margin; a file that decodes longer is not what was probed, and is refused."""
    if analysis.duration_ms is not None:
        return decode_limit_s(analysis.duration_ms / 1000)
    return decode_limit_s(max_duration_s) if max_duration_s is not None else None


async def score_recorded(
    sessionmaker: async_sessionmaker[AsyncSession],
    llm: LLMClient | None,
    transcript: Transcript,
    *,
    scope: tuple[uuid.UUID, bool],
    rubric: tuple[str, str | None],
    call_direction: str | None,
    analysis_level: str,
) -> ScoringResult:
    """Score ``transcript`` with the rubric a call recorded (a built-in file, or the account's stored
    version) at its analysis level. An LLM outage is the runner's ``RetryableError``; a rubric that is
    gone raises ``RubricNotFound`` / ``RubricInvalid`` for the caller to fail its own record."""
    async with sessionmaker() as session:
        loaded = await rubrics.load_for_scoring(session, scope, *rubric)
    try:
        return await score(
            transcript,
            rubric=loaded,
            llm=llm,
            call_direction=call_direction,
            level="compliance" if analysis_level == "compliance" else "full",
        )
    except InferenceError as exc:
        raise RetryableError(str(exc)) from exc


@dataclass
class Inference:
    transcriber: Transcriber
    llm: LLMClient | None


class AnalysisPipeline:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        inference: Inference,
        fetch_audio: Callable[[str], Awaitable[Path]],
        *,
        on_event: Callable[[], None] | None = None,
        on_scoring: Callable[[], None] | None = None,
        max_duration_s: float | None = None,
        billing_max_attempts: int = 50,
        storage: Storage | None = None,
        keep_original_audio: bool = True,
    ) -> None:
        self.sessionmaker = sessionmaker
        # The maximum call duration: the decode bound of an analysis whose duration was not probed.
        self.max_duration_s = max_duration_s
        self.inference = inference
        self.fetch_audio = fetch_audio
        # Called after a commit that wrote a webhook event (wakes the delivery loop), and after one
        # that enqueued a scoring job (wakes the scoring loop).
        self.on_event = on_event
        self.on_scoring = on_scoring
        self.billing_max_attempts = billing_max_attempts  # of the refund's Stripe usage report
        # Where a bleeped copy is written (``redact_audio``), and whether the original stays then.
        self.storage = storage
        self.keep_original_audio = keep_original_audio

    async def _processing(self, job: Job) -> Analysis | None:
        async with self.sessionmaker() as session:
            analysis = await session.get(Analysis, payload_id(job, "analysis_id"))
        return analysis if analysis is not None and analysis.status == "processing" else None

    async def transcribe(self, job: Job) -> None:
        """Stage 1: transcribe, then hand the transcript to the scoring stage (``Settled``)."""
        analysis = await self._processing(job)
        if analysis is None or analysis.original_audio_deleted_at is not None:
            return  # a duplicate run: the original goes only after this stage has finished
        started = time.monotonic()
        try:
            path = await self.fetch_audio(analysis.audio_uri or "")
        except FileNotFoundError as exc:
            await self.fail(analysis.id, "The stored recording is missing.")
            raise PermanentError(f"audio of {analysis.id} missing: {analysis.audio_uri}") from exc
        transcript = await self._transcript(analysis, path)
        # Before anything is stored: PCI data never is, nor the PII the submission asked to redact.
        transcript = redact_transcript(transcript, analysis.redact_pii_policies)
        redacted_uri = await self._bleeped(analysis, path, transcript) if analysis.redact_audio else None
        elapsed_ms = round((time.monotonic() - started) * 1000)
        async with self.sessionmaker() as session:
            if not await queue.finish(session, job.id, job.locked_by or ""):
                logger.info("transcription job %s is no longer ours; its result is dropped", job.id)
                raise Settled()
            payload = {
                "analysis_id": str(analysis.id),
                "transcript": transcript.model_dump(mode="json"),
                "transcription_ms": elapsed_ms,
            }
            queue.enqueue(session, SCORE_JOB, payload, max_attempts=job.max_attempts)
            if redacted_uri is not None:
                await session.exec(
                    update(Analysis)
                    .where(col(Analysis.id) == analysis.id)
                    .values(redacted_audio_uri=redacted_uri)
                )
            await session.commit()
        if self.on_scoring is not None:
            self.on_scoring()
        if redacted_uri is not None:
            analysis.redacted_audio_uri = redacted_uri
            await self._drop_original(analysis)
        raise Settled()

    async def _transcript(self, analysis: Analysis, path: Path) -> Transcript:
        try:
            return await transcribe_recording(
                self.inference.transcriber, analysis, path, self._decode_limit(analysis)
            )
        except ValueError as exc:  # the transcriber could not decode the audio: it never will
            await self.fail(analysis.id, UNDECODABLE, refund=False)  # the recording's doing: billed
            raise PermanentError(f"{analysis.id}: {exc}") from exc

    async def _bleeped(self, analysis: Analysis, path: Path, transcript: Transcript) -> str:
        """The bleeped copy of the recording (``redacted_audio.py``), stored; its URI."""
        if self.storage is None:
            raise RuntimeError("redact_audio needs the pipeline's storage")
        try:
            return await store_bleeped(self.storage, analysis, path, transcript, self._decode_limit(analysis))
        except BleepFailed as exc:
            message = "The recording could not be decoded for audio redaction."
            await self.fail(analysis.id, message, refund=False)  # the recording's doing: billed
            raise PermanentError(f"{analysis.id}: {exc}") from exc

    async def _drop_original(self, analysis: Analysis) -> None:
        if not self.keep_original_audio and self.storage is not None:
            await drop_original(self.storage, self.sessionmaker, analysis)

    def _decode_limit(self, analysis: Analysis) -> float | None:
        return decode_limit(analysis, self.max_duration_s)

    async def score(self, job: Job) -> None:
        """Stage 2: score the transcript the transcription stage recorded, and complete the analysis."""
        analysis = await self._processing(job)
        if analysis is None:
            return
        await self._drop_original(analysis)  # if the transcription stage could not
        started = time.monotonic()
        transcript = redact_transcript(
            Transcript.model_validate(job.payload["transcript"]), analysis.redact_pii_policies
        )
        try:
            scope = (analysis.user_id, analysis.livemode)
            scored = await score_recorded(
                self.sessionmaker,
                self.inference.llm,
                transcript,
                scope=scope,
                rubric=(analysis.rubric_id, analysis.rubric_version),
                call_direction=analysis.call_direction,
                analysis_level=analysis.analysis_level,
            )
        except (RubricNotFound, RubricInvalid) as exc:
            await self.fail(analysis.id, f"The scoring rubric '{analysis.rubric_id}' is not available.")
            raise PermanentError(f"{analysis.id}: {exc}") from exc
        elapsed_ms = int(job.payload.get("transcription_ms", 0)) + round((time.monotonic() - started) * 1000)
        await self._complete(analysis.id, transcript, scored, elapsed_ms)

    async def _complete(
        self, analysis_id: uuid.UUID, transcript: Transcript, scored: ScoringResult, elapsed_ms: int
    ) -> None:
        now = utcnow()
        async with self.sessionmaker() as session:
            result = await session.exec(
                update(Analysis)
                .where(col(Analysis.id) == analysis_id, col(Analysis.status) == "processing")
                .values(
                    status="completed",
                    transcript=transcript.public(),
                    results=scored.results,
                    language=transcript.language,
                    completed_at=now,
                    updated_at=now,
                    processing_time_ms=elapsed_ms,
                    rubric_version=scored.rubric_version,
                    prompt_version=scored.prompt_version,
                    transcriber_model=transcript.model,
                    llm_model=scored.llm_model,
                    llm_status=scored.evaluation["llm"],
                    llm_reason=(scored.evaluation["reason"] or "")[:500] or None,
                    failed_checks=failed_checks(scored.results),
                )
            )
            if result.rowcount != 1:
                logger.info("analysis %s was already finished; result of this run dropped", analysis_id)
                return
            await self._finished(session, analysis_id)
        metrics.analysis_completed(scored.evaluation["llm"], transcript.duration_s)

    async def fail(self, analysis_id: uuid.UUID, message: str, *, refund: bool = True) -> None:
        """The one place an analysis fails for good: a permanent error, or its job given up (out of
        attempts, or of crashes). It becomes ``failed`` with ``message`` and its webhook event is
        written in the same transaction; whatever else a final failure must do belongs here too.
        ``refund``: the failure is CallCov's, so its usage is reversed in that transaction too (not
        when the recording caused it: undecodable, or it crashed the transcriber)."""
        now = utcnow()
        async with self.sessionmaker() as session:
            result = await session.exec(
                update(Analysis)
                .where(col(Analysis.id) == analysis_id, col(Analysis.status) == "processing")
                .values(status="failed", error_message=message, completed_at=now, updated_at=now)
            )
            if result.rowcount == 1:
                if refund:
                    await refunds.refund_analysis(
                        session, analysis_id, max_attempts=self.billing_max_attempts
                    )
                await self._finished(session, analysis_id)
            else:
                await session.commit()

    async def _finished(self, session: AsyncSession, analysis_id: uuid.UUID) -> None:
        """Write the webhook event (outbox) in the transaction of the terminal state, and commit."""
        analysis = await session.get(Analysis, analysis_id, populate_existing=True)
        event = events.record(session, analysis) if analysis is not None else None
        await session.commit()
        if event is not None and self.on_event is not None:
            self.on_event()

    async def give_up(self, job: Job, reason: str) -> None:
        logger.error("analysis job %s gave up: %s", job.id, reason)
        # Out of attempts (an outage): refunded. Out of crashes: the call may be what killed the
        # worker or the replica, so it is billed like a recording that cannot be decoded.
        await self.fail(payload_id(job, "analysis_id"), FAILED_MESSAGE, refund=job.crashes == 0)
