"""Faults during processing: PostgreSQL restarted, Redis stopped and started again, the whisper and LLM
replicas killed, the whole service kill -9'd while analysing and while delivering webhooks. After each:
no accepted analysis lost or duplicated, usage recorded once, every webhook delivered (at least once,
signed), and the service healthy again without a human."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from reliability.audit import render_calls, settle, submit_batch
from reliability.fixtures import Figures, Service
from reliability.servers import PrivatePostgres, PrivateRedis
from webhook_receiver import Receiver, Reply

pytestmark = pytest.mark.reliability

CALLS_PER_FAULT = 4
SETTLE_S = 240


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return render_calls(tmp_path_factory.mktemp("calls"))


def kill_replicas(service: Service, deployment: str) -> int:
    """kill -9 of every Serve replica process of one deployment (Serve starts new ones). Ray's processes
    stay in the service's session, so they are found by session id."""
    assert service.proc is not None
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            same_session = os.getsid(int(entry.name)) == service.proc.pid
        except OSError:
            continue
        if same_session and f"ServeReplica:{deployment}:" in title:
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
    return killed


def run_fault(
    scenario: str,
    service: Service,
    account: dict[str, Any],
    receiver: tuple[Receiver, str],
    calls: list[Path],
    figures: Figures,
    fault: Any,
    *,
    delay_s: float = 1.5,
) -> None:
    ids = submit_batch(service.url, account["key"], calls, scenario, CALLS_PER_FAULT, receiver[1])
    time.sleep(delay_s)
    started = time.monotonic()
    detail = fault(ids)
    healthy_after_s = round(service.wait_healthy(timeout_s=240) + (time.monotonic() - started), 1)
    result, drained_s = settle(service.env["CALLCOV_DB__URL"], scenario, ids, receiver[0], SETTLE_S)
    figures.record(
        f"fault:{scenario}",
        {**result.figures(), "healthy_after_s": healthy_after_s, "drained_s": drained_s, "detail": detail},
    )
    assert result.clean, result.figures()
    assert service.healthy()


def test_postgres_restarted_mid_run(
    service: Service,
    account: dict[str, Any],
    receiver: tuple[Receiver, str],
    calls: list[Path],
    figures: Figures,
    postgres: PrivatePostgres,
) -> None:
    def fault(ids: list[str]) -> str:
        postgres.restart()
        return "pg_ctl stop -m immediate, then start"

    run_fault("pg-restart", service, account, receiver, calls, figures, fault)


def test_redis_stopped_and_restarted(
    service: Service,
    account: dict[str, Any],
    receiver: tuple[Receiver, str],
    calls: list[Path],
    figures: Figures,
    private_redis: PrivateRedis,
) -> None:
    def fault(ids: list[str]) -> str:
        private_redis.stop()
        # Without Redis: submissions are still accepted (in-process limits), the dispatcher polls.
        time.sleep(2)
        extra = submit_batch(service.url, account["key"], calls, "redis-restart-down", 2, receiver[1])
        ids.extend(extra)
        time.sleep(8)
        private_redis.start()
        return "redis-server killed; 2 calls submitted while it was down; started again 10 s later"

    run_fault("redis-restart", service, account, receiver, calls, figures, fault)


@pytest.mark.parametrize("deployment", ["whisper", "llm"])
def test_model_replica_killed(
    deployment: str,
    service: Service,
    account: dict[str, Any],
    receiver: tuple[Receiver, str],
    calls: list[Path],
    figures: Figures,
) -> None:
    def fault(ids: list[str]) -> str:
        killed = kill_replicas(service, deployment)
        assert killed >= 1, f"no {deployment} replica process found"
        return f"{killed} {deployment} replica process(es) kill -9"

    # The LLM is reached after transcription (2-5 s of a stand-in slot per call).
    run_fault(
        f"kill-{deployment}",
        service,
        account,
        receiver,
        calls,
        figures,
        fault,
        delay_s=1.5 if deployment == "whisper" else 4.0,
    )


def test_service_killed_while_analysing(
    service: Service,
    account: dict[str, Any],
    receiver: tuple[Receiver, str],
    calls: list[Path],
    figures: Figures,
) -> None:
    def fault(ids: list[str]) -> str:
        service.kill()
        restart_s = service.start()
        return f"kill -9 of the service's process group, restarted in {restart_s:.0f} s"

    run_fault("kill-service-processing", service, account, receiver, calls, figures, fault)


def test_service_killed_while_delivering_webhooks(
    service: Service,
    account: dict[str, Any],
    receiver: tuple[Receiver, str],
    calls: list[Path],
    figures: Figures,
) -> None:
    hook = receiver[0]
    seen = len(hook.received)
    # The receiver holds the first deliveries for 20 s: the service dies with them in flight.
    hook.answer(*[Reply(200, delay_s=20.0)] * CALLS_PER_FAULT)

    def fault(ids: list[str]) -> str:
        deadline = time.monotonic() + 120
        while len(hook.received) == seen:
            assert time.monotonic() < deadline, "no webhook delivery started"
            time.sleep(0.2)
        in_flight = len(hook.received) - seen
        service.kill()
        hook.answer()
        restart_s = service.start()
        return f"kill -9 with {in_flight} delivery(ies) in flight, restarted in {restart_s:.0f} s"

    run_fault("kill-service-delivering", service, account, receiver, calls, figures, fault, delay_s=0)
