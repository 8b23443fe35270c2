"""The production job wiring (``callcov.jobs``): every job kind a domain enqueues has a runner, each
group runs at its configured concurrency, and a wake-up names its job kind and wakes that kind's
runner (not only the analysis one)."""

from __future__ import annotations

import ast
import asyncio
import importlib
from pathlib import Path

import httpx
import pytest
from conftest import SignUp, job_runners, wake_ups
from fastapi import FastAPI
from test_pipeline import FakeTranscriber, runner_for, submitted

import callcov
from callcov.analyses.pipeline import SCORE_JOB
from callcov.billing.accounts import CLOSE_ACCOUNT_JOB
from callcov.billing.metering import REPORT_USAGE_JOB
from callcov.billing.stripe_webhook import STRIPE_EVENT_JOB
from callcov.jobs import TASK_GROUPS
from callcov.rescores.service import RESCORE_JOB, RETRANSCRIBE_JOB
from callcov.state import state_of_app
from callcov.webhooks.events import WEBHOOK_JOB
from callcov.worker.wake import listen

pytestmark = pytest.mark.asyncio
PACKAGE = Path(callcov.__file__).parent


def enqueued_kinds() -> dict[str, str]:
    """Every job kind passed to ``queue.enqueue`` anywhere in the package -> the module doing it."""
    kinds: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        module = "callcov." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            func = node.func if isinstance(node, ast.Call) else None
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name != "enqueue" or module == "callcov.worker.queue":
                continue
            kind = node.args[1]  # type: ignore[attr-defined]
            if isinstance(kind, ast.Constant):
                kinds[str(kind.value)] = module
            else:
                assert isinstance(kind, ast.Name), f"{module}: enqueue with a computed kind"
                kinds[getattr(importlib.import_module(module), kind.id)] = module
    return kinds


class TestWiring:
    async def test_every_enqueued_kind_has_a_runner(self, app: FastAPI) -> None:
        kinds = enqueued_kinds()
        assert set(kinds) == {
            "analysis",
            SCORE_JOB,
            WEBHOOK_JOB,
            STRIPE_EVENT_JOB,
            REPORT_USAGE_JOB,
            CLOSE_ACCOUNT_JOB,
            RESCORE_JOB,
            RETRANSCRIBE_JOB,
        }
        runners = job_runners(app)
        assert runners.kinds == set(kinds)
        assert runners.kinds == {kind for group in TASK_GROUPS for kind in group.kinds}

    async def test_one_runner_per_group_at_its_concurrency(self, app: FastAPI) -> None:
        runners = job_runners(app, worker={"concurrency": 3}, webhooks={"concurrency": 11})
        assert {name: runner.settings.concurrency for name, runner in runners.by_group.items()} == {
            "transcription": 3,
            "scoring": 3,
            "rescoring": 3,
            "webhooks": 11,
            "billing": 3,
        }
        assert set(runners["transcription"].handlers) == {"analysis"}
        assert set(runners["scoring"].handlers) == {SCORE_JOB}
        assert set(runners["rescoring"].handlers) == {RESCORE_JOB, RETRANSCRIBE_JOB}
        assert set(runners["webhooks"].handlers) == {WEBHOOK_JOB}
        assert set(runners["billing"].handlers) == {STRIPE_EVENT_JOB, REPORT_USAGE_JOB, CLOSE_ACCOUNT_JOB}
        assert all(
            runner.on_give_up is not None
            for runner in runners.only("transcription", "scoring", "rescoring", "webhooks")
        )

    async def test_the_analysis_stages_have_their_own_slots(self, app: FastAPI) -> None:
        """Set from the model deployments' capacity (deployments/capacity.py), not the fixed default."""
        worker = {"concurrency": 2, "transcription_concurrency": 8, "scoring_concurrency": 64}
        runners = job_runners(app, worker=worker)
        assert (runners["transcription"].settings.concurrency, runners["scoring"].settings.concurrency) == (
            8,
            64,
        )
        assert runners["billing"].settings.concurrency == 2


class TestWakeUps:
    @pytest.mark.parametrize("kind", [STRIPE_EVENT_JOB, REPORT_USAGE_JOB, WEBHOOK_JOB, "analysis"])
    async def test_a_wake_up_wakes_the_runner_of_its_kind(self, app: FastAPI, kind: str) -> None:
        state = state_of_app(app)
        runners = job_runners(app)
        target = next(runner for runner in runners if kind in runner.handlers)
        stop = asyncio.Event()
        listener = asyncio.create_task(listen(state.settings.redis, runners.wake, stop, retry_s=0.1))
        try:
            async with asyncio.timeout(10):
                while not target.wake.is_set():  # until the listener has subscribed
                    await state.waker.wake(kind)
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            listener.cancel()
        assert [runner.wake.is_set() for runner in runners] == [runner is target for runner in runners]

    async def test_an_unknown_kind_wakes_every_runner(self, app: FastAPI) -> None:
        runners = job_runners(app)
        runners.wake("from-an-older-release")
        assert all(runner.wake.is_set() for runner in runners)

    async def test_submission_and_webhook_url_publish_their_kinds(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        signed_up: SignUp,
        fake_dns,  # type: ignore[no-untyped-def]
    ) -> None:
        fake_dns({"hooks.example.test": ["93.184.216.34"]})
        async with wake_ups(app) as read:
            key, analysis_id = await submitted(client, signed_up)
            assert await read(1) == ["analysis"]
            await runner_for(app, FakeTranscriber()).drain()
            r = await client.post(
                f"/api/v1/analysis/{analysis_id}/webhook",
                json={"webhook_url": "http://hooks.example.test/hook"},
                headers={"X-API-Key": key},
            )
            assert r.status_code == 200, r.text
            assert await read(1) == [WEBHOOK_JOB]
