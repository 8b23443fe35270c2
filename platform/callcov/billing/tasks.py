"""The billing jobs: applying a stored Stripe event, reporting overage usage (and credits) to Stripe,
and closing the billing of a deactivated account. They run in a runner of their own, beside (never
behind) long analysis jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.billing import accounts, stripe_webhook, usage_reports
from callcov.billing.accounts import CLOSE_ACCOUNT_JOB
from callcov.billing.stripe_webhook import STRIPE_EVENT_JOB
from callcov.billing.usage_reports import REPORT_USAGE_JOB
from callcov.config import BillingSettings
from callcov.models import Job
from callcov.worker.runner import Handler, payload_id
from callcov.worker.wiring import Handlers, JobContext, TaskGroup


def billing_handlers(
    sessionmaker: async_sessionmaker[AsyncSession], settings: BillingSettings
) -> dict[str, Handler]:
    plan_tiers = {plan_id: tier for tier, plan_id in settings.stripe_plan_ids.items()}

    async def report_usage(job: Job) -> None:
        period_start = datetime.fromtimestamp(int(job.payload["period_start"]), UTC)
        await usage_reports.run(
            sessionmaker,
            settings,
            payload_id(job, "user_id"),
            period_start,
            tier=job.payload.get("tier"),
            final=bool(job.payload.get("final")),
        )

    async def stripe_event(job: Job) -> None:
        async with sessionmaker() as session:
            await stripe_webhook.process(
                session, payload_id(job, "event_id"), plan_tiers, max_attempts=settings.job_max_attempts
            )
            await session.commit()

    async def close_account(job: Job) -> None:
        await accounts.close_account(sessionmaker, settings, payload_id(job, "user_id"))

    return {REPORT_USAGE_JOB: report_usage, STRIPE_EVENT_JOB: stripe_event, CLOSE_ACCOUNT_JOB: close_account}


def _handlers(context: JobContext) -> Handlers:
    return Handlers(billing_handlers(context.sessionmaker, context.settings.billing))


TASKS = TaskGroup(
    name="billing", kinds=(REPORT_USAGE_JOB, STRIPE_EVENT_JOB, CLOSE_ACCOUNT_JOB), build=_handlers
)
