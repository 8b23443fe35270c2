"""The billing job kinds and their handlers (the dispatcher registers them next to the analysis job)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing import usage_reports, webhook
from callcov.billing.metering import REPORT_USAGE_JOB
from callcov.billing.webhook import STRIPE_EVENT_JOB
from callcov.config import BillingSettings
from callcov.models import Job
from callcov.worker.runner import Handler, payload_id


def billing_handlers(
    sessionmaker: async_sessionmaker[AsyncSession], settings: BillingSettings
) -> dict[str, Handler]:
    plan_tiers = {plan_id: tier for tier, plan_id in settings.stripe_plan_ids.items()}

    async def report_usage(job: Job) -> None:
        period_start = datetime.fromtimestamp(int(job.payload["period_start"]), UTC)
        await usage_reports.run(sessionmaker, settings, payload_id(job, "user_id"), period_start)

    async def stripe_event(job: Job) -> None:
        async with sessionmaker() as session:
            await webhook.process(session, payload_id(job, "event_id"), plan_tiers)
            await session.commit()

    return {REPORT_USAGE_JOB: report_usage, STRIPE_EVENT_JOB: stripe_event}
