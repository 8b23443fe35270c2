"""The analysis stages, each a task group with its own runner and slots: ``transcription`` (the
``analysis`` job a submission enqueues) and ``scoring`` (``analysis.score``, enqueued by the first
stage with the transcript; see ``pipeline.py``). A finished analysis with a webhook URL wakes this
process' webhook runner."""

from __future__ import annotations

from callcov.analyses.pipeline import SCORE_JOB, AnalysisPipeline, Inference
from callcov.analyses.service import ANALYSIS_JOB
from callcov.config import Settings
from callcov.storage.objects import build_storage
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker.wiring import Handlers, JobContext, TaskGroup


def _pipeline(context: JobContext) -> AnalysisPipeline:
    inference = context.ports
    if not isinstance(inference, Inference):
        raise TypeError(f"the analysis job needs the inference ports, got {type(inference).__name__}")
    storage = build_storage(context.settings)
    return AnalysisPipeline(
        context.sessionmaker,
        inference,
        storage.fetch,
        on_event=lambda: context.wake(WEBHOOK_JOB),
        on_scoring=lambda: context.wake(SCORE_JOB),
        max_duration_s=context.settings.audio.max_duration_s,
        billing_max_attempts=context.settings.billing.job_max_attempts,
        storage=storage,
        keep_original_audio=context.settings.storage.keep_original_audio,
    )


def _transcription(context: JobContext) -> Handlers:
    pipeline = _pipeline(context)
    return Handlers({ANALYSIS_JOB: pipeline.transcribe}, on_give_up=pipeline.give_up)


def _scoring(context: JobContext) -> Handlers:
    pipeline = _pipeline(context)
    return Handlers({SCORE_JOB: pipeline.score}, on_give_up=pipeline.give_up)


def _transcription_slots(settings: Settings) -> int:
    return settings.worker.transcription_concurrency or settings.worker.concurrency


def _scoring_slots(settings: Settings) -> int:
    return settings.worker.scoring_concurrency or settings.worker.concurrency


TRANSCRIPTION = TaskGroup(
    name="transcription", kinds=(ANALYSIS_JOB,), build=_transcription, concurrency=_transcription_slots
)
SCORING = TaskGroup(name="scoring", kinds=(SCORE_JOB,), build=_scoring, concurrency=_scoring_slots)
