"""Issue 12 (findings 4, 7, 8, 10b) on the local ledger: overage cannot be avoided by cancelling now or
by changing plan just before the roll-over, overage has a cap, test mode has a monthly quota, a failed
analysis is refunded exactly once, and deactivating the account ends the paid plan with its overage
billed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from billing_support import (
    WAV_MINUTES,
    new_account,
    run_billing_jobs,
    seed_usage,
    submit,
    subscription_row,
    tone_wav,
    update_subscription,
)
from conftest import create_key, job_runners
from fastapi import FastAPI
from sqlmodel import col, select

from callcov.analyses.pipeline import SCORE_JOB
from callcov.billing.subscription_state import roll_if_due
from callcov.inference.ports import TranscriptionRequest
from callcov.kit.time import utcnow
from callcov.models import Analysis, Invoice, Job, Subscription, UsageRecord
from callcov.state import state_of_app
from callcov.worker.runner import PermanentError

pytestmark = pytest.mark.asyncio
API = "/api/v1/billing"
CLOSE_ACCOUNT_JOB = "billing.close_account"


async def invoices_of(app: FastAPI, user_id: uuid.UUID) -> list[Invoice]:
    async with state_of_app(app).sessionmaker() as session:
        query = select(Invoice).where(Invoice.user_id == user_id).order_by(col(Invoice.created_at))
        return list((await session.exec(query)).all())


async def paid(client: httpx.AsyncClient, headers: dict[str, str], tier: str) -> None:
    r = await client.post(f"{API}/subscription", json={"tier": tier}, headers=headers)
    assert r.status_code == 201, r.text


async def ending_in(app: FastAPI, user_id: uuid.UUID, left: timedelta) -> None:
    """Move the current period so that it ends ``left`` from now (its usage stays inside it)."""
    end = utcnow().replace(microsecond=0) + left
    await update_subscription(
        app, user_id, current_period_start=end - timedelta(days=30), current_period_end=end
    )


async def roll_over(app: FastAPI, user_id: uuid.UUID) -> None:
    """The first request after the period's end, one second after it."""
    async with state_of_app(app).sessionmaker() as session:
        sub = (await session.exec(select(Subscription).where(Subscription.user_id == user_id))).one()
        assert await roll_if_due(session, sub, now=sub.current_period_end + timedelta(seconds=1))
        await session.commit()


class TestCancelNow:
    async def test_bills_the_overage_used_so_far_at_the_plan_in_force(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await paid(client, account.headers, "starter")
        await seed_usage(app, user_id, 1200.0)  # 200 overage minutes at 5 cents
        r = await client.post(
            f"{API}/subscription/cancel", json={"at_period_end": False}, headers=account.headers
        )
        assert r.status_code == 200 and r.json()["tier"] == "free"
        amounts = [i.amount_due for i in await invoices_of(app, user_id)]
        assert amounts == [4900, 1000]
        # The minutes used stay counted (less those billed as overage): free's 500 are spent.
        assert (await submit(client, account.headers)).status_code == 402


class TestPlanChange:
    async def test_upgrade_before_the_roll_over_prices_earlier_minutes_at_the_old_plan(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await paid(client, account.headers, "starter")
        await ending_in(app, user_id, timedelta(hours=1))
        await seed_usage(app, user_id, 3000.0, days_ago=1)  # 2,000 overage minutes on starter: $100
        r = await client.post(f"{API}/subscription/update", json={"tier": "growth"}, headers=account.headers)
        assert r.status_code == 200 and r.json()["tier"] == "growth"
        # Growth's 5,000 minutes cover what is left: 3,000 used, 2,000 of them already billed.
        assert r.json()["minutes_remaining"] == pytest.approx(4000, abs=0.01)
        await roll_over(app, user_id)
        invoices = await invoices_of(app, user_id)
        overage = [i.amount_due for i in invoices if "overage" in (i.description or "").lower()]
        assert overage == [10000], [(i.amount_due, i.description) for i in invoices]
        roll = invoices[-1]
        assert roll.amount_due == 19900  # the next growth period, no more overage

    async def test_downgrade_keeps_the_minutes_used_counted(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await paid(client, account.headers, "growth")
        await seed_usage(app, user_id, 5100.0)  # 100 overage minutes on growth: $4
        r = await client.post(f"{API}/subscription/update", json={"tier": "starter"}, headers=account.headers)
        assert r.status_code == 200
        body = r.json()
        assert (body["tier"], body["minutes_remaining"]) == ("starter", 0)
        assert body["overage_minutes"] == pytest.approx(100 + 4000, abs=0.01)
        overage = [
            i.amount_due
            for i in await invoices_of(app, user_id)
            if "overage" in (i.description or "").lower()
        ]
        assert overage == [400]


class TestOverageCap:
    async def test_submissions_past_the_cap_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await paid(client, account.headers, "starter")
        cap = 5000  # the default cap of starter (CALLCOV_BILLING__OVERAGE_CAP_MINUTES)
        await seed_usage(app, user_id, 1000 + cap - WAV_MINUTES / 2)
        r = await submit(client, account.headers)
        assert r.status_code == 402, r.text
        error = r.json()["error"]
        assert error["code"] == "usage_limit_exceeded" and error["details"]["reason"] == "overage_cap_reached"
        assert error["details"]["overage_cap_minutes"] == cap
        sub = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        assert sub["overage_cap_minutes"] == cap
        # An operator raises the account's cap (callcov set-overage-cap): accepted again.
        from callcov.billing.accounts import set_overage_cap

        async with state_of_app(app).sessionmaker() as session:
            await set_overage_cap(session, user_id, cap + 100)
            await session.commit()
        assert (await submit(client, account.headers)).status_code == 201


class TestTestModeQuota:
    async def test_test_mode_has_a_monthly_quota(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        account, user_id = await new_account(client, app)
        test_key = await create_key(client, account, "test")
        quota = 300  # the default (CALLCOV_BILLING__TEST_MINUTES_PER_PERIOD)
        async with state_of_app(app).sessionmaker() as session:
            # Failed test analyses count too: the quota bounds the work, and test mode is never billed.
            for status, minutes in (("completed", quota - 100.0), ("failed", 100.0 - WAV_MINUTES / 2)):
                session.add(
                    Analysis(
                        user_id=user_id,
                        livemode=False,
                        agent_id="seed",
                        contact_id="seed",
                        status=status,
                        duration_ms=round(minutes * 60000),
                    )
                )
            await session.commit()
        r = await submit(client, {"X-API-Key": test_key})
        assert r.status_code == 402, r.text
        error = r.json()["error"]
        assert (
            error["code"] == "usage_limit_exceeded" and error["details"]["reason"] == "test_minutes_exhausted"
        )
        assert error["details"]["test_minutes_limit"] == quota
        # Live mode is not affected by the test quota.
        assert (await submit(client, account.headers)).status_code == 201


class DecodeFails:
    """Test double of the Transcriber: the recording cannot be decoded (a permanent failure)."""

    async def transcribe(self, request: TranscriptionRequest) -> None:
        raise ValueError("not decodable")


async def analysis_job(app: FastAPI, analysis_id: str) -> Job:
    async with state_of_app(app).sessionmaker() as session:
        jobs = (await session.exec(select(Job).where(Job.kind == "analysis"))).all()
    return next(j for j in jobs if j.payload["analysis_id"] == analysis_id)


async def fail_analysis(app: FastAPI, analysis_id: str, *, crashes: int = 0) -> None:
    """Give the analysis' job up as the runner does: after its last attempt (an outage of the
    transcriber, ``crashes=0``), or after its crash budget (``crashes=2``). The production wiring."""
    job = await analysis_job(app, analysis_id)
    job.crashes = crashes
    runner = job_runners(app)["transcription"]
    assert runner.on_give_up is not None
    await runner.on_give_up(job, "out of attempts" if not crashes else f"{crashes} crash(es)")


async def undecodable(app: FastAPI, analysis_id: str) -> None:
    """Run the analysis' transcription job with a transcriber that cannot decode the recording."""
    runners = job_runners(app, DecodeFails())
    with pytest.raises(PermanentError):
        await runners["transcription"].handlers["analysis"](await analysis_job(app, analysis_id))
    assert SCORE_JOB in runners["scoring"].handlers


MINUTE_WAV = tone_wav(60.0)  # one minute: 5 cents of starter overage


class TestRefund:
    async def test_a_failed_analysis_is_refunded_exactly_once(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await paid(client, account.headers, "starter")
        await seed_usage(app, user_id, 1100.0)
        analysis_id = (await submit(client, account.headers, MINUTE_WAV)).json()["id"]
        before = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        assert before["minutes_used"] == pytest.approx(1101, abs=1e-3)
        await fail_analysis(app, analysis_id)
        await fail_analysis(app, analysis_id)  # a second run (a duplicate job) refunds nothing more
        after = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        assert after["minutes_used"] == pytest.approx(1100, abs=1e-4)
        assert after["overage_minutes"] == pytest.approx(100, abs=1e-4)
        async with state_of_app(app).sessionmaker() as session:
            query = select(UsageRecord).where(UsageRecord.analysis_id == uuid.UUID(analysis_id))
            record = (await session.exec(query)).one()
        assert record.voided_at is not None
        history = (await client.get(f"{API}/history", headers=account.headers)).json()
        [item] = [i for i in history["items"] if i.get("analysis_id") == analysis_id]
        assert item["refunded_at"] is not None

    @pytest.mark.parametrize("cause", ["undecodable", "crashed"])
    async def test_a_failure_the_recording_caused_is_billed(
        self, client: httpx.AsyncClient, app: FastAPI, cause: str
    ) -> None:
        account, user_id = await new_account(client, app)
        analysis_id = (await submit(client, account.headers, MINUTE_WAV)).json()["id"]
        if cause == "undecodable":
            await undecodable(app, analysis_id)
        else:
            await fail_analysis(app, analysis_id, crashes=2)
        body = (await client.get(f"/api/v1/analysis/{analysis_id}", headers=account.headers)).json()
        assert body["status"] == "failed"
        sub = (await client.get(f"{API}/subscription", headers=account.headers)).json()
        assert sub["minutes_used"] == pytest.approx(1, abs=1e-4)

    async def test_a_refund_after_the_period_was_invoiced_is_a_credit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await paid(client, account.headers, "starter")
        await seed_usage(app, user_id, 1100.0)
        analysis_id = (await submit(client, account.headers, MINUTE_WAV)).json()["id"]
        await roll_over(app, user_id)  # the closed period's overage is invoiced: 101 minutes, $5.05
        await fail_analysis(app, analysis_id)  # a late failure of a call of that period
        invoices = await invoices_of(app, user_id)
        assert [i.amount_due for i in invoices[-2:]] == [4900 + 505, -5]
        assert "refund" in (invoices[-1].description or "").lower()
        await fail_analysis(app, analysis_id)
        assert len(await invoices_of(app, user_id)) == len(invoices)


class TestDeactivation:
    async def test_deactivation_ends_the_paid_plan_and_bills_its_overage(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        account, user_id = await new_account(client, app)
        await paid(client, account.headers, "growth")
        await seed_usage(app, user_id, 5050.0)  # 50 overage minutes at 4 cents
        r = await client.delete("/api/v1/users/me", headers=account.headers)
        assert r.status_code == 200, r.text
        assert await run_billing_jobs(app, CLOSE_ACCOUNT_JOB, "user_id", str(user_id)) == 1
        row = await subscription_row(app, user_id)
        assert (row.tier, row.canceled_at is not None) == ("free", True)
        assert [i.amount_due for i in await invoices_of(app, user_id)] == [19900, 200]
