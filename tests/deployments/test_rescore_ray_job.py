"""Bulk re-scoring submitted with the Ray Job CLI (issue 14): a real local Ray cluster
(``ray start --head`` on free ports, never 6379), ``ray job submit --working-dir .`` of
``python -m callcov.rescores.bulk`` over 32 stored analyses, ``ray job stop`` halfway, the same run
submitted again with its ``--run-id``; every analysis is re-scored exactly once. The queue is worked
by the production runners in this process (the dispatcher's code), against the same database."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import SignUp, create_key, free_port, server_env
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import col, select

from callcov.models import AnalysisResult, Rescore, RescoreRun
from callcov.state import state_of_app

sys.path.insert(0, str(Path(__file__).parents[1] / "callcov"))
from test_rescores import h, runners  # noqa: E402
from test_rubrics import create, with_fee_notice  # noqa: E402
from test_submission import submit  # noqa: E402

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
CALLS = 32
# Loopback only, as callcov-serve runs it: no token auth (a token file in ~/.ray would otherwise turn
# it on for the head and not for the CLI).
RAY_ENV = {"PATH": f"{BIN}:{os.environ['PATH']}", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray head (its own process group, stopped with it); yields the job server's address."""
    port, dashboard = free_port(), free_port()
    env = {**os.environ, **RAY_ENV}
    log = tmp_path_factory.mktemp("ray") / "start.log"
    # Its own temp dir: the default one's ray_current_cluster would send a later `serve run` (or
    # ray.init) on this machine to this cluster once it is gone.
    temp_dir = tempfile.mkdtemp(prefix="rayjob-", dir="/tmp")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", f"--port={port}", f"--dashboard-port={dashboard}",
             f"--temp-dir={temp_dir}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
             "--num-cpus=1", "--disable-usage-stats"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        assert proc.wait(timeout=120) == 0, log.read_text()
    address = f"http://127.0.0.1:{dashboard}"
    try:
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(2)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp_dir, ignore_errors=True)


def ray_job(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **RAY_ENV, "RAY_ADDRESS": address}
    return subprocess.run(
        [str(BIN / "ray"), "job", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def submit_job(address: str, submission_id: str, env_vars: dict[str, str], *argv: str) -> None:
    runtime_env = json.dumps({"env_vars": env_vars})
    done = ray_job(
        address, "submit", "--no-wait", "--working-dir", ".", "--submission-id", submission_id,
        "--runtime-env-json", runtime_env, "--", "python", "-m", "callcov.rescores.bulk", *argv,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def job_status(address: str, submission_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(address).get_job_status(submission_id).value)


def job_logs(address: str, submission_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address).get_job_logs(submission_id)


async def work_until(app: FastAPI, done: object, timeout_s: float = 240) -> None:
    """Work the rescoring queue (the dispatcher's runner) until ``done()`` is true."""
    work = runners(app)["rescoring"]
    deadline = time.monotonic() + timeout_s
    while not await done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the run made no progress in time"
        await work.run_once()
        await work.drain()
        await asyncio.sleep(0.1)


async def test_ray_job_stopped_halfway_and_resubmitted_rescores_each_once(
    client: httpx.AsyncClient, app: FastAPI, signed_up: SignUp, pg_url: str, ray_head: str
) -> None:
    account = await signed_up()
    key = await create_key(client, account, "test")
    ids = [(await submit(client, key)).json()["id"] for _ in range(CALLS)]
    await runners(app).drain()
    rid = (await create(client, key, await with_fee_notice(client, key))).json()["id"]
    settings = state_of_app(app).settings
    env = {
        k: v for k, v in server_env(pg_url).items() if k.startswith("CALLCOV_") or k == "HF_HUB_OFFLINE"
    } | {"CALLCOV_REDIS__KEY_PREFIX": settings.redis.key_prefix}
    first = f"rescore-{uuid.uuid4().hex[:8]}"
    args = (
        "--rubric",
        f"{rid}@1",
        "--account",
        account.email,
        "--mode",
        "test",
        "--concurrency",
        "4",
        "--poll-s",
        "0.2",
    )
    submit_job(ray_head, first, env, *args)

    mine = [uuid.UUID(i) for i in ids]

    async def halfway() -> bool:  # this run's rescores only: the database is the session's
        async with state_of_app(app).sessionmaker() as session:
            done = await session.exec(
                select(func.count())
                .select_from(Rescore)
                .where(Rescore.status == "completed", col(Rescore.analysis_id).in_(mine))
            )
            return int(done.one()) >= CALLS // 2

    await work_until(app, halfway)
    stopped = await asyncio.to_thread(ray_job, ray_head, "stop", first)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert await asyncio.to_thread(job_status, ray_head, first) == "STOPPED"
    async with state_of_app(app).sessionmaker() as session:
        run = (await session.exec(select(RescoreRun).where(RescoreRun.rubric_id == rid))).one()
    record = (await client.get(f"/api/v1/rescore-runs/{run.id}", headers=h(key))).json()
    assert record["status"] == "running" and CALLS // 2 <= record["done"] < CALLS, record

    second = f"rescore-{uuid.uuid4().hex[:8]}"
    submit_job(ray_head, second, env, "--run-id", str(run.id), "--poll-s", "0.2")

    async def finished() -> bool:
        return await asyncio.to_thread(job_status, ray_head, second) in ("SUCCEEDED", "FAILED", "STOPPED")

    await work_until(app, finished)
    logs = await asyncio.to_thread(job_logs, ray_head, second)
    assert await asyncio.to_thread(job_status, ray_head, second) == "SUCCEEDED", logs
    assert f"rescore run {run.id}:" in logs and "re-scored" in logs and "completed" in logs
    record = (await client.get(f"/api/v1/rescore-runs/{run.id}", headers=h(key))).json()
    assert (record["status"], record["selected"], record["done"], record["failed"]) == (
        "completed",
        CALLS,
        CALLS,
        0,
    )
    async with state_of_app(app).sessionmaker() as session:
        rescores = (await session.exec(select(Rescore).where(Rescore.run_id == run.id))).all()
        versions = (
            await session.exec(
                select(AnalysisResult).where(AnalysisResult.rescore_id.in_([r.id for r in rescores]))
            )  # type: ignore[union-attr]
        ).all()
    assert sorted(str(r.analysis_id) for r in rescores) == sorted(ids)  # each analysis once
    assert sorted(str(v.analysis_id) for v in versions) == sorted(ids)  # one new version each
