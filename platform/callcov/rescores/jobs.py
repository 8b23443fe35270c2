"""The re-scoring jobs: ``analysis.retranscribe`` (transcribe the stored recording again, redact, and
hand the transcript on) and ``analysis.rescore`` (score a transcript with the rescore's rubric and
write a new results version). Idempotent like the analysis pipeline: only a ``processing`` rescore is
worked on, and its completion applies once, so a job that runs twice writes one version."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses import events
from callcov.analyses.pipeline import (
    FAILED_MESSAGE,
    UNDECODABLE,
    Inference,
    decode_limit,
    score_recorded,
    transcribe_recording,
)
from callcov.billing import refunds
from callcov.inference.transcript import Transcript
from callcov.kit.time import utcnow
from callcov.models import Analysis, Job, Rescore
from callcov.rescores import results
from callcov.rescores.service import RESCORE_JOB
from callcov.scoring.redaction import redact_transcript
from callcov.scoring.rubric import RubricInvalid, RubricNotFound
from callcov.scoring.scorer import ScoringResult
from callcov.scoring.verdicts import failed_checks
from callcov.webhooks import events as outbox
from callcov.worker import queue
from callcov.worker.runner import PermanentError, Settled, payload_id

logger = logging.getLogger("callcov.rescores")

RESCORED_EVENT = "analysis.rescored"


class Rescorer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        inference: Inference,
        fetch_audio: Callable[[str], Awaitable[Path]],
        *,
        on_event: Callable[[], None] | None = None,
        on_rescore: Callable[[], None] | None = None,
        max_duration_s: float | None = None,
        billing_max_attempts: int = 50,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.inference = inference
        self.fetch_audio = fetch_audio
        self.on_event = on_event  # after a commit that wrote a webhook event
        self.on_rescore = on_rescore  # after a retranscription enqueued its scoring
        self.max_duration_s = max_duration_s
        self.billing_max_attempts = billing_max_attempts

    async def _pending(self, job: Job) -> tuple[Rescore, Analysis] | None:
        async with self.sessionmaker() as session:
            rescore = await session.get(Rescore, payload_id(job, "rescore_id"))
            analysis = await session.get(Analysis, rescore.analysis_id) if rescore is not None else None
        if rescore is None or analysis is None or rescore.status != "processing":
            return None
        return rescore, analysis

    async def retranscribe(self, job: Job) -> None:
        pending = await self._pending(job)
        if pending is None:
            return
        rescore, analysis = pending
        try:
            path = await self.fetch_audio(analysis.audio_uri or "")
        except FileNotFoundError as exc:
            await self.fail(rescore.id, "The stored recording is missing.")
            raise PermanentError(f"audio of {analysis.id} missing") from exc
        try:
            limit = decode_limit(analysis, self.max_duration_s)
            transcript = await transcribe_recording(self.inference.transcriber, analysis, path, limit)
        except ValueError as exc:
            await self.fail(rescore.id, UNDECODABLE, refund=False)
            raise PermanentError(f"{analysis.id}: {exc}") from exc
        transcript = redact_transcript(transcript, analysis.redact_pii_policies)
        async with self.sessionmaker() as session:
            if not await queue.finish(session, job.id, job.locked_by or ""):
                raise Settled()
            payload = {"rescore_id": str(rescore.id), "transcript": transcript.model_dump(mode="json")}
            queue.enqueue(session, RESCORE_JOB, payload, max_attempts=job.max_attempts)
            await session.commit()
        if self.on_rescore is not None:
            self.on_rescore()
        raise Settled()

    def _transcript(self, job: Job, analysis: Analysis) -> tuple[Transcript, bool]:
        """The transcript to score, and whether it is new (a retranscription's)."""
        if "transcript" in job.payload:
            return Transcript.model_validate(job.payload["transcript"]), True
        duration = analysis.duration_ms / 1000 if analysis.duration_ms is not None else None
        stored = Transcript.from_public(
            analysis.transcript or {}, duration_s=duration, model=analysis.transcriber_model
        )
        return stored, False

    async def rescore(self, job: Job) -> None:
        pending = await self._pending(job)
        if pending is None:
            return
        rescore, analysis = pending
        transcript, new = self._transcript(job, analysis)
        transcript = redact_transcript(transcript, analysis.redact_pii_policies)
        try:
            scored = await score_recorded(
                self.sessionmaker,
                self.inference.llm,
                transcript,
                scope=(rescore.user_id, rescore.livemode),
                rubric=(rescore.rubric_id, rescore.rubric_version),
                call_direction=analysis.call_direction,
                analysis_level=rescore.analysis_level,
            )
        except (RubricNotFound, RubricInvalid) as exc:
            await self.fail(rescore.id, f"The scoring rubric '{rescore.rubric_id}' is not available.")
            raise PermanentError(f"rescore {rescore.id}: {exc}") from exc
        await self._complete(rescore.id, scored, transcript if new else None)

    async def _complete(
        self, rescore_id: uuid.UUID, scored: ScoringResult, transcript: Transcript | None
    ) -> None:
        """In one transaction, under the analysis row's lock (versions are numbered in order): the
        rescore completes (once), the new results version is written and shown on the analysis, and
        the ``analysis.rescored`` event is recorded when it was asked for."""
        async with self.sessionmaker() as session:
            rescore = await session.get(Rescore, rescore_id)
            if rescore is None:
                return
            analysis = (
                await session.exec(
                    select(Analysis).where(Analysis.id == rescore.analysis_id).with_for_update()
                )
            ).one()
            done = await session.exec(
                update(Rescore)
                .where(col(Rescore.id) == rescore_id, col(Rescore.status) == "processing")
                .values(status="completed", completed_at=utcnow())
            )
            if done.rowcount != 1:
                await session.commit()
                return
            number = await results.add_version(session, analysis, rescore, scored.results)
            rescore.results_version = number
            _show(analysis, rescore, scored, transcript)
            session.add_all([analysis, rescore])
            await session.flush()
            event = _rescored_event(session, analysis, rescore) if rescore.webhook else None
            await session.commit()
        if event is not None and self.on_event is not None:
            self.on_event()

    async def fail(self, rescore_id: uuid.UUID, message: str, *, refund: bool = True) -> None:
        """The rescore fails for good (the analysis keeps its results); a retranscription that failed
        through CallCov's fault is refunded, like a submission (docs/api.md, "Refunds")."""
        async with self.sessionmaker() as session:
            rescore = await session.get(Rescore, rescore_id)
            result = await session.exec(
                update(Rescore)
                .where(col(Rescore.id) == rescore_id, col(Rescore.status) == "processing")
                .values(status="failed", error_message=message, completed_at=utcnow())
            )
            if result.rowcount == 1 and refund and rescore is not None and rescore.retranscribe:
                await refunds.refund_analysis(
                    session,
                    rescore.analysis_id,
                    rescore_id=rescore_id,
                    max_attempts=self.billing_max_attempts,
                )
            await session.commit()

    async def give_up(self, job: Job, reason: str) -> None:
        logger.error("rescore job %s gave up: %s", job.id, reason)
        await self.fail(payload_id(job, "rescore_id"), FAILED_MESSAGE, refund=job.crashes == 0)


def _show(analysis: Analysis, rescore: Rescore, scored: ScoringResult, transcript: Transcript | None) -> None:
    """The analysis row shows the newest results (and the new transcript of a retranscription)."""
    now = utcnow()
    analysis.results = scored.results
    analysis.rubric_id, analysis.rubric_version = rescore.rubric_id, scored.rubric_version
    analysis.prompt_version, analysis.llm_model = scored.prompt_version, scored.llm_model
    analysis.llm_status = scored.evaluation["llm"]
    analysis.llm_reason = (scored.evaluation["reason"] or "")[:500] or None
    analysis.failed_checks = failed_checks(scored.results)
    analysis.updated_at = now
    if transcript is not None:
        analysis.transcript, analysis.language = transcript.public(), transcript.language
        analysis.transcriber_model = transcript.model
        if analysis.status == "failed":  # a failed call, transcribed at last
            analysis.status, analysis.error_message, analysis.completed_at = "completed", None, now


def _rescored_event(session: AsyncSession, analysis: Analysis, rescore: Rescore) -> object:
    """``analysis.rescored``: the analysis as GET returns it now, and which re-scoring made it."""
    payload = events.event_body(analysis)
    payload["rescore"] = {
        "id": str(rescore.id),
        "rubric": {"id": rescore.rubric_id, "version": rescore.rubric_version},
        "results_version": rescore.results_version,
        "retranscribe": rescore.retranscribe,
    }
    new = outbox.NewEvent(
        account_id=analysis.user_id,
        livemode=analysis.livemode,
        subject_id=analysis.id,
        url=analysis.webhook_url or "",
        event_type=RESCORED_EVENT,
        payload=payload,
    )
    return outbox.record(session, new)
