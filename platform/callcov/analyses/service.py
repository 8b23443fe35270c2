"""Creating an analysis: the row, its job and (live mode) its usage, in one transaction."""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.analyses.submission import Submission
from callcov.auth.principal import Principal
from callcov.billing import metering
from callcov.db import after_commit
from callcov.models import Analysis
from callcov.state import AppState
from callcov.worker import queue

logger = logging.getLogger("callcov.analyses")

ANALYSIS_JOB = "analysis"
WAKE_CHANNEL = "jobs"


async def create_analysis(
    session: AsyncSession, state: AppState, principal: Principal, submission: Submission
) -> Analysis:
    fields, info, audio = submission.fields, submission.info, submission.audio
    metered = await metering.check(session, principal, info.duration_s / 60)  # 402 before any work
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
        rubric_id=fields.rubric or "default",
        analysis_level=metered.level,
    )
    session.add(analysis)
    await session.flush()
    job = queue.enqueue(
        session,
        ANALYSIS_JOB,
        {"analysis_id": str(analysis.id)},
        max_attempts=state.settings.worker.max_attempts,
    )
    metering.record(
        session, principal, analysis, job, metered, max_attempts=state.settings.billing.job_max_attempts
    )
    after_commit(session, lambda: wake_dispatcher(state))
    return analysis


async def wake_dispatcher(state: AppState) -> None:
    """Tell the dispatcher there is work now (it polls anyway: losing this loses nothing)."""
    if state.redis is None:
        return
    try:
        await state.redis.publish(state.settings.redis.key_prefix + WAKE_CHANNEL, ANALYSIS_JOB)
    except Exception as exc:
        logger.warning("could not wake the dispatcher: %s", exc)
