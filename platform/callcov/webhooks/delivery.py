"""The webhook job: sign the event, POST it, record the attempt, and either finish the event or
put the job back for the next retry, in one transaction.

Retried: timeouts, connection and DNS errors, 408, 429 and 5xx, after the waits of
``retry_schedule_s``. Ended: 2xx (delivered); any other status (3xx included: redirects are not
followed); a URL refused by the SSRF check; 410, which also disables the URL for the account.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import Webhook

from callcov.config import Settings
from callcov.db import insert_ignoring_conflict
from callcov.kit.time import utcnow
from callcov.models import DisabledWebhookUrl, Job, WebhookAttempt, WebhookEvent
from callcov.webhooks import events, secret_store
from callcov.webhooks.sender import SendResult, post
from callcov.worker import queue
from callcov.worker.runner import Settled, payload_id

logger = logging.getLogger("callcov.webhooks")

RETRY_STATUSES = frozenset({408, 429})


def signed_headers(event: WebhookEvent, body: str, secrets: list[str], now: datetime) -> dict[str, str]:
    msg_id = events.message_id(event.id)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(msg_id, now, body) for secret in secrets),
    }


def is_retryable(result: SendResult) -> bool:
    if result.refused:
        return False
    if result.status_code is None:
        return True
    return result.status_code in RETRY_STATUSES or result.status_code >= 500


async def is_disabled(session: AsyncSession, event: WebhookEvent) -> bool:
    found = await session.exec(
        select(DisabledWebhookUrl.id).where(
            col(DisabledWebhookUrl.user_id) == event.user_id, col(DisabledWebhookUrl.url) == event.url
        )
    )
    return found.first() is not None


class WebhookDelivery:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def handle(self, job: Job) -> None:
        event_id = payload_id(job, "event_id")
        async with self.sessionmaker() as session:
            event = await session.get(WebhookEvent, event_id)
            if event is None or event.status != "pending":
                return
            if await is_disabled(session, event):
                await events.end_pending(
                    session,
                    col(WebhookEvent.id) == event.id,
                    "The URL was disabled after it answered 410 Gone",
                )
                await session.commit()
                return
            row = await secret_store.get_or_create(
                session, self.settings.webhooks, event.user_id, event.livemode
            )
            secrets = secret_store.signing_secrets(self.settings.webhooks, row)
            await session.commit()
        result = await self._send(event, secrets)
        async with self.sessionmaker() as session:
            await self._record(session, job, event, result)
            await session.commit()
        raise Settled()  # the attempt, the event and the job changed in that one transaction

    async def _send(self, event: WebhookEvent, secrets: list[str]) -> SendResult:
        body = events.encode(event.payload)
        options = self.settings.webhooks
        return await post(
            event.url,
            body.encode(),
            signed_headers(event, body, secrets, utcnow()),
            allow=self.settings.network.url_allow,
            timeout_s=options.timeout_s,
            excerpt_chars=options.response_excerpt_chars,
        )

    def _next_retry(self, attempt: int, result: SendResult) -> datetime | None:
        schedule = self.settings.webhooks.retry_schedule_s
        if not is_retryable(result) or attempt > len(schedule):
            return None
        # A receiver's Retry-After is honoured, up to the schedule's longest wait.
        wait = max(schedule[attempt - 1], min(result.retry_after_s or 0, max(schedule)))
        return utcnow() + timedelta(seconds=wait)

    async def _record(self, session: AsyncSession, job: Job, event: WebhookEvent, result: SendResult) -> None:
        """Store the attempt and the event's new state, and settle the job (done, or due again)."""
        attempt = event.attempts + 1
        retry_at = None if result.ok else self._next_retry(attempt, result)
        outcome = "succeeded" if result.ok else "retrying" if retry_at else "failed"
        session.add(
            WebhookAttempt(
                event_id=event.id,
                analysis_id=event.analysis_id,
                attempt=attempt,
                url=event.url,
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                outcome=outcome,
                response_excerpt=result.response_excerpt,
                error=result.error,
                next_retry_at=retry_at,
            )
        )
        now = utcnow()
        values: dict[str, object] = {"attempts": attempt, "next_attempt_at": retry_at}
        if outcome != "retrying":
            values.update(status="delivered" if result.ok else "failed", finished_at=now)
            values["last_error"] = None if result.ok else self._final_error(attempt, result)
        else:
            values["last_error"] = result.error or f"HTTP {result.status_code}"
        await session.exec(
            update(WebhookEvent)
            .where(col(WebhookEvent.id) == event.id, col(WebhookEvent.status) == "pending")
            .values(**values)
        )
        if result.status_code == 410:
            await self._disable(session, event)
        if retry_at is not None:
            await queue.reschedule(session, job.id, job.locked_by or "", retry_at)
        else:
            await queue.finish(session, job.id, job.locked_by or "")

    def _final_error(self, attempt: int, result: SendResult) -> str:
        reason = result.error or f"HTTP {result.status_code}"
        if is_retryable(result):
            return f"Gave up after {attempt} attempts: {reason}"
        return reason[:1000]

    async def _disable(self, session: AsyncSession, event: WebhookEvent) -> None:
        await insert_ignoring_conflict(  # another delivery may disable the same URL now
            session,
            DisabledWebhookUrl(user_id=event.user_id, url=event.url, reason="The URL answered 410 Gone"),
        )
        logger.info("webhook URL disabled for account %s after 410: %s", event.user_id, event.url)

    async def give_up(self, job: Job, reason: str) -> None:
        async with self.sessionmaker() as session:
            event_id = payload_id(job, "event_id")
            await events.end_pending(session, col(WebhookEvent.id) == event_id, f"Delivery gave up: {reason}")
            await session.commit()
