"""The analysis job: transcribe and score one submitted call (``AnalysisPipeline``). A finished
analysis with a webhook URL wakes this process' webhook runner."""

from __future__ import annotations

from callcov.analyses.pipeline import AnalysisPipeline, Inference
from callcov.analyses.service import ANALYSIS_JOB
from callcov.storage.objects import build_storage
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker.wiring import Handlers, JobContext, TaskGroup


def _handlers(context: JobContext) -> Handlers:
    inference = context.ports
    if not isinstance(inference, Inference):
        raise TypeError(f"the analysis job needs the inference ports, got {type(inference).__name__}")
    pipeline = AnalysisPipeline(
        context.sessionmaker,
        inference,
        build_storage(context.settings).fetch,
        on_event=lambda: context.wake(WEBHOOK_JOB),
    )
    return Handlers({ANALYSIS_JOB: pipeline.handle}, on_give_up=pipeline.give_up)


TASKS = TaskGroup(name="analysis", kinds=(ANALYSIS_JOB,), build=_handlers)
