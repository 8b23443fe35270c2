"""Creating an analysis (the row, its job and, in live mode, its usage, in one transaction) and
pointing its webhook at a new URL."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses import events
from callcov.analyses.submission import Submission
from callcov.auth.principal import Principal
from callcov.billing import metering
from callcov.config import BillingSettings, NetworkSettings
from callcov.models import Analysis, WebhookEvent
from callcov.rubrics import service as rubrics
from callcov.webhooks import service as webhooks
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker import queue
from callcov.worker.wake import Waker, wake_after_commit

ANALYSIS_JOB = "analysis"


async def create_analysis(
    session: AsyncSession,
    principal: Principal,
    submission: Submission,
    *,
    max_attempts: int,
    billing: BillingSettings,
    waker: Waker,
) -> Analysis:
    fields, info, audio = submission.fields, submission.info, submission.audio
    scope = (principal.account_id, principal.livemode)
    rubric_id, rubric_version = await rubrics.choose(session, scope, fields.rubric)  # 400 before billing
    metered = await metering.check(session, principal, info.duration_s / 60, billing)  # 402 before any work
    analysis = Analysis(
        user_id=principal.account_id,
        livemode=principal.livemode,
        agent_id=fields.agent_id,
        contact_id=fields.contact_id,
        call_direction=fields.call_direction,
        call_timestamp=fields.call_timestamp,
        duration_ms=round(info.duration_s * 1000),
        audio_url=fields.audio_url,
        audio_uri=audio.uri,
        audio_size_bytes=audio.size_bytes,
        audio_format=info.format,
        audio_channels=info.channels,
        audio_sample_rate=info.sample_rate,
        language=fields.language,
        client_metadata=fields.metadata or {},
        webhook_url=fields.webhook_url,
        rubric_id=rubric_id,
        rubric_version=rubric_version,
        analysis_level=metered.level,
        redact_pii=bool(fields.pii_policies),
        redact_pii_policies=fields.pii_policies,
        redact_audio=fields.redact_audio,
    )
    session.add(analysis)
    await session.flush()
    job = queue.enqueue(session, ANALYSIS_JOB, {"analysis_id": str(analysis.id)}, max_attempts=max_attempts)
    report = metering.record(
        session, principal, analysis, job, metered, max_attempts=billing.job_max_attempts
    )
    wake_after_commit(session, waker, job.kind, *([report.kind] if report is not None else []))
    return analysis


async def set_webhook_url(
    session: AsyncSession, analysis: Analysis, url: str, *, network: NetworkSettings, waker: Waker
) -> WebhookEvent | None:
    """Replace the URL (checked like at submission; setting it again re-enables it after a 410).
    Undelivered events of the analysis end; a finished analysis gets a new event for the new URL."""
    analysis.webhook_url = url  # written only if the URL passes the check (else the request rolls back)
    session.add(analysis)
    event = await webhooks.set_webhook_url(
        session,
        account_id=analysis.user_id,
        subject_id=analysis.id,
        url=url,
        network=network,
        event=events.new_event(analysis),
    )
    if event is not None:
        wake_after_commit(session, waker, WEBHOOK_JOB)
    return event
