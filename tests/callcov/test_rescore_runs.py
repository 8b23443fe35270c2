"""Bulk re-scoring runs (issue 14), in process: the driver of ``python -m callcov.rescores.bulk``
against the test database while the production runners work the queue. The same run through
``ray job submit`` on a real local Ray cluster is tests/deployments/test_rescore_ray_job.py."""

from __future__ import annotations

import argparse
import asyncio
import io
import uuid
from typing import Any

import httpx
import pytest
from conftest import SignUp, count, create_key, wake_ups
from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import select
from test_rescores import completed, h, runners
from test_rubrics import create, with_fee_notice
from test_submission import submit

from callcov.models import Analysis, AnalysisResult, Rescore, RescoreRun
from callcov.rescores import bulk
from callcov.rescores.progress import Progress
from callcov.state import state_of_app

pytestmark = pytest.mark.asyncio


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bulk.add_arguments(parser)
    return parser.parse_args([*argv, "--poll-s", "0.05"])


async def account_with_calls(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp, n: int
) -> tuple[Any, str, list[str]]:
    account = await signed_up()
    key = await create_key(client, account, "test")
    ids = [(await submit(client, key, agent_id=f"agent-{i % 2}")).json()["id"] for i in range(n)]
    await runners(app).drain()
    return account, key, ids


async def run_until(
    app: FastAPI, args: argparse.Namespace, stop_after: int | None = None
) -> tuple[str, str | None]:
    """Drive the run while the runners work; cancel the driver once ``stop_after`` rescores are done.
    The printed output, and the run id (None for a dry run)."""
    out = io.StringIO()
    settings = state_of_app(app).settings
    task = asyncio.create_task(bulk.drive(settings, args, Progress(out)))
    work = runners(app)
    while not task.done():
        await work["rescoring"].run_once()
        await work["rescoring"].drain()
        if stop_after is not None and await count(app, Rescore, status="completed") >= stop_after:
            task.cancel()
        await asyncio.sleep(0.02)
    run = None if task.cancelled() else task.result()
    text = out.getvalue()
    run_id = (
        str(run.id)
        if run is not None
        else (text.split("rescore run ", 1)[1].split(":", 1)[0] if "rescore run " in text else None)
    )
    return text, run_id


async def test_a_run_stopped_halfway_resumes_and_rescores_each_once(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    account, key, ids = await account_with_calls(client, app, signed_up, 8)
    rid = (await create(client, key, await with_fee_notice(client, key))).json()["id"]
    base = ("--rubric", f"{rid}@1", "--account", account.email, "--mode", "test", "--concurrency", "2")
    text, _ = await run_until(app, parse(*base, "--dry-run"))
    assert text.startswith("dry run: 8 analyses selected") and await count(app, RescoreRun, rubric_id=rid) == 0
    before = await count(app, Rescore, status="completed")
    text, run_id = await run_until(app, parse(*base), stop_after=before + 3)
    assert run_id is not None
    record = (await client.get(f"/api/v1/rescore-runs/{run_id}", headers=h(key))).json()
    assert record["status"] == "running" and record["selected"] == 8 and 3 <= record["done"] < 8, record
    text, again = await run_until(app, parse("--run-id", run_id))
    assert again == run_id and "completed" in text
    record = (await client.get(f"/api/v1/rescore-runs/{run_id}", headers=h(key))).json()
    assert record["object"] == "rescore_run" and record["status"] == "completed" and record["finished"]
    assert (record["selected"], record["done"], record["failed"], record["queued"]) == (8, 8, 0, 8)
    assert record["rubric"] == {"id": rid, "version": "1"}
    async with state_of_app(app).sessionmaker() as session:
        mine = (await session.exec(select(Rescore).where(Rescore.run_id == uuid.UUID(run_id)))).all()
        versions = (
            await session.exec(
                select(AnalysisResult).where(AnalysisResult.analysis_id.in_([uuid.UUID(i) for i in ids]))  # type: ignore[attr-defined]
            )
        ).all()
    assert sorted(str(r.analysis_id) for r in mine) == sorted(ids)  # each once
    assert len(versions) == 16  # the submission's and the run's, per analysis
    body = (await client.get(f"/api/v1/analysis/{ids[0]}", headers=h(key))).json()
    assert "fee_notice" in body["results"]["compliance"]["mandatory_disclosures"]["missing_disclosures"]
    # A finished run, submitted again, does nothing.
    text, _ = await run_until(app, parse("--run-id", run_id))
    assert await count(app, Rescore, run_id=uuid.UUID(run_id)) == 8
    other = await client.get(
        f"/api/v1/rescore-runs/{run_id}", headers=h(await create_key(client, account, "live"))
    )
    assert other.status_code == 404


async def test_selection_filters_and_per_call_errors(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    account, key, ids = await account_with_calls(client, app, signed_up, 4)
    user_id = (await client.get("/api/v1/users/me", headers=account.headers)).json()["id"]
    async with state_of_app(app).sessionmaker() as session:  # one call failed before its transcript
        await session.exec(
            update(Analysis)
            .where(Analysis.id == uuid.UUID(ids[0]))  # type: ignore[arg-type]
            .values(status="failed", transcript=None, results=None, agent_id="agent-0")
        )
        await session.commit()
    args = parse(
        "--rubric", "default", "--account", user_id, "--mode", "test", "--agent", "agent-0",
        "--status", "completed", "--status", "failed",
    )  # fmt: skip
    _, run_id = await run_until(app, args)
    record = (await client.get(f"/api/v1/rescore-runs/{run_id}", headers=h(key))).json()
    assert record["selected"] == 2 and record["done"] == 1 and record["failed"] == 1, record
    assert record["errors"][0]["analysis_id"] == ids[0] and "retranscribe" in record["errors"][0]["message"]
    assert record["selection"]["agent_id"] == "agent-0" and record["rubric"]["id"] == "default"
    late = await completed(client, app, key, agent_id="agent-0")  # after the run: not in its selection
    assert await count(app, Rescore, analysis_id=uuid.UUID(late["id"])) == 0
    with pytest.raises(bulk.RunRefused):
        await run_until(app, parse("--rubric", "nope", "--account", user_id, "--mode", "test"))
    with pytest.raises(bulk.RunRefused):
        await run_until(app, parse("--rubric", "default", "--account", "nobody@example.com"))


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_is_a_bar_on_a_terminal_and_lines_in_logs() -> None:
    run = RescoreRun(user_id=uuid.uuid4(), livemode=False, rubric_id="default", selected=4)
    bar, log = Tty(), io.StringIO()
    for out in (Progress(bar), Progress(log)):
        out.update(run, 1, 1, 2)
        out.update(run, 3, 1, 0)
    assert bar.getvalue().startswith("\r[" + "#" * 15 + "." * 15 + "] 2/4 re-scored")
    assert "\r[" + "#" * 30 + "] 4/4 re-scored (3 done, 1 failed, 0 in flight)" in bar.getvalue()
    assert log.getvalue().splitlines() == [
        f"rescore run {run.id}: 2/4 re-scored (1 done, 1 failed, 2 in flight)",
        f"rescore run {run.id}: 4/4 re-scored (3 done, 1 failed, 0 in flight)",
    ]


async def test_a_run_wakes_the_dispatchers_rescoring_runner(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp
) -> None:
    account, _, _ = await account_with_calls(client, app, signed_up, 1)
    args = parse("--rubric", "default", "--account", account.email, "--mode", "test")
    async with wake_ups(app) as read:
        task = asyncio.create_task(bulk.drive(state_of_app(app).settings, args, Progress(io.StringIO())))
        try:
            assert await read(1) == ["analysis.rescore"]
        finally:
            task.cancel()
    await runners(app).drain()
