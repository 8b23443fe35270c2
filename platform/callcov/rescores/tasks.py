"""The re-scoring jobs, one task group (``rescoring``) with the scoring stage's number of slots: a
retranscription holds its slot while it transcribes (they are rare; a bulk run bounds how many it
starts at once, see ``bulk.py``), then hands the scoring on as its own job."""

from __future__ import annotations

from callcov.analyses.pipeline import Inference
from callcov.config import Settings
from callcov.rescores.jobs import Rescorer
from callcov.rescores.service import RESCORE_JOB, RETRANSCRIBE_JOB
from callcov.storage.objects import build_storage
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker.wiring import Handlers, JobContext, TaskGroup


def _rescoring(context: JobContext) -> Handlers:
    inference = context.ports
    if not isinstance(inference, Inference):
        raise TypeError(f"the rescore jobs need the inference ports, got {type(inference).__name__}")
    rescorer = Rescorer(
        context.sessionmaker,
        inference,
        build_storage(context.settings).fetch,
        on_event=lambda: context.wake(WEBHOOK_JOB),
        on_rescore=lambda: context.wake(RESCORE_JOB),
        max_duration_s=context.settings.audio.max_duration_s,
        billing_max_attempts=context.settings.billing.job_max_attempts,
    )
    return Handlers(
        {RESCORE_JOB: rescorer.rescore, RETRANSCRIBE_JOB: rescorer.retranscribe}, on_give_up=rescorer.give_up
    )


def _slots(settings: Settings) -> int:
    return settings.worker.scoring_concurrency or settings.worker.concurrency


RESCORING = TaskGroup(
    name="rescoring", kinds=(RESCORE_JOB, RETRANSCRIBE_JOB), build=_rescoring, concurrency=_slots
)
