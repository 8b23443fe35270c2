"""Starting a re-scoring of one analysis (asked through the API or by a run): the checks, what it
costs (docs/api.md, "Re-scoring"), the row and its job, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.principal import Principal
from callcov.billing import metering
from callcov.config import BillingSettings
from callcov.kit.time import utcnow
from callcov.models import Analysis, Rescore
from callcov.rescores.errors import NotRescorable, WebhookNotConfigured
from callcov.rubrics import builtins
from callcov.rubrics import service as rubrics
from callcov.rubrics.refs import parse_ref
from callcov.worker import queue
from callcov.worker.wake import Waker, wake_after_commit

RESCORE_JOB = "analysis.rescore"  # scores a transcript (the stored one, or a retranscription's)
RETRANSCRIBE_JOB = "analysis.retranscribe"  # transcribes the stored recording again, then RESCORE_JOB


@dataclass(frozen=True)
class Ask:
    """What to re-score with: the rubric pinned to a version, and the options."""

    rubric_id: str
    rubric_version: str
    webhook: bool = False
    retranscribe: bool = False


async def pin_rubric(session: AsyncSession, scope: rubrics.Scope, value: str) -> tuple[str, str]:
    """The rubric ``value`` names, as the submission's ``rubric`` field is checked (400 when it cannot
    be chosen), with its version fixed now: a built-in's latest too."""
    rubric_id, version = await rubrics.choose(session, scope, value)
    if version is None:
        ref = parse_ref(value)
        version = builtins.builtin(rubric_id, ref.version if ref else None).version
    return rubric_id, version


def refuse_unless_rescorable(analysis: Analysis, ask: Ask) -> None:
    if analysis.status == "processing":
        raise NotRescorable(
            "The analysis is still processing: re-score it once it has completed",
            details={"status": analysis.status},
        )
    if ask.retranscribe:
        if analysis.audio_uri is None or analysis.original_audio_deleted_at is not None:
            raise NotRescorable(
                "The original recording was deleted (redact_audio without keeping the original): "
                "only the stored transcript can be re-scored",
                details={"retranscribe": True},
            )
    elif analysis.transcript is None:
        raise NotRescorable(
            "The analysis has no stored transcript (it failed before one was made): "
            "ask for retranscribe: true",
            details={"status": analysis.status},
        )
    if ask.webhook and not analysis.webhook_url:
        raise WebhookNotConfigured()


async def start(
    session: AsyncSession,
    principal: Principal,
    analysis: Analysis,
    ask: Ask,
    *,
    billing: BillingSettings,
    max_attempts: int,
    waker: Waker,
    run_id: object = None,
) -> Rescore:
    """The re-scoring, queued (the caller commits). Refuses what cannot be re-scored (409), a webhook
    without a URL (400) and what the plan does not allow (402), before anything is written."""
    refuse_unless_rescorable(analysis, ask)
    minutes = (analysis.duration_ms or 0) / 60000 if ask.retranscribe else 0.0
    metered = await metering.check_rescore(session, principal, minutes, billing)
    rescore = _row(principal, analysis, ask, run_id, analysis_level=metered.level, minutes=minutes)
    session.add(rescore)
    await session.flush()
    payload = {"rescore_id": str(rescore.id)}
    if ask.retranscribe:
        job = queue.enqueue(session, RETRANSCRIBE_JOB, payload, max_attempts=max_attempts)
    else:
        job = queue.enqueue(session, RESCORE_JOB, payload, max_attempts=max_attempts)
    report = metering.record_retranscription(
        session, principal, rescore, metered, max_attempts=billing.job_max_attempts
    )
    wake_after_commit(session, waker, job.kind, *([report.kind] if report is not None else []))
    return rescore


def _row(principal: Principal, analysis: Analysis, ask: Ask, run_id: object, **fields: object) -> Rescore:
    return Rescore(
        user_id=principal.account_id,
        livemode=principal.livemode,
        analysis_id=analysis.id,
        run_id=run_id,  # type: ignore[arg-type]
        rubric_id=ask.rubric_id,
        rubric_version=ask.rubric_version,
        retranscribe=ask.retranscribe,
        webhook=ask.webhook,
        **fields,  # type: ignore[arg-type]
    )


def refused(principal: Principal, analysis: Analysis, ask: Ask, run_id: object, message: str) -> Rescore:
    """A run's rescore that could not start (its reason kept as the per-call error)."""
    return _row(
        principal, analysis, ask, run_id, status="failed", error_message=message[:2000], completed_at=utcnow()
    )
