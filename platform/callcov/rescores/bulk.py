"""Bulk re-scoring: ``python -m callcov.rescores.bulk``, the entrypoint of a Ray job
(``ray job submit --working-dir . -- python -m callcov.rescores.bulk --rubric rub_…@2 --account …``)
and of ``callcov rescore`` (the same code, in the operator's shell).

The job is the run's coordinator: it pages through the selection (``runs.py``) and keeps at most
``--concurrency`` of its rescores in flight as jobs on the service's queue, so the dispatcher scores them
through the same deployments, retries and leases as every call (and the model deployments scale on that
queue). It prints progress (a bar on a terminal, lines in the Ray job's logs) and ends when every
selected analysis has been re-scored or has failed with its error in the run record
(``GET /api/v1/rescore-runs/{id}``). Stopped or crashed, it resumes with ``--run-id``; a finished run
does nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.principal import Principal
from callcov.config import Settings, get_settings
from callcov.db import create_engine, create_sessionmaker, run_after_commit
from callcov.errors import AppError
from callcov.kit.time import utcnow
from callcov.models import Analysis, RescoreRun, User
from callcov.rescores import runs, service
from callcov.rescores.progress import Progress
from callcov.worker.wake import NoWaker, Waker, build_waker

STALL_HINT_S = 60.0


class RunRefused(Exception):
    """The run cannot start or resume (unknown account, rubric or run); the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rubric", help="rub_…@N, rub_…, default or default@N (not with --run-id)")
    parser.add_argument("--account", help="the account: its email or user id (not with --run-id)")
    parser.add_argument(
        "--mode", choices=("live", "test"), default="live", help="whose analyses (default live)"
    )
    parser.add_argument("--since", type=_when, help="analyses created at or after (ISO 8601, UTC)")
    parser.add_argument("--until", type=_when, help="analyses created before (ISO 8601, UTC; default: now)")
    parser.add_argument("--agent", help="only this agent_id")
    parser.add_argument(
        "--status",
        action="append",
        choices=("completed", "failed"),
        help="analyses in this status (repeatable; default completed; failed ones need --retranscribe)",
    )
    parser.add_argument("--retranscribe", action="store_true", help="transcribe again first (metered)")
    parser.add_argument("--webhook", action="store_true", help="send analysis.rescored where a URL is set")
    parser.add_argument("--dry-run", action="store_true", help="count the selection; start nothing")
    parser.add_argument("--run-id", type=uuid.UUID, help="resume this run (a finished one does nothing)")
    parser.add_argument("--concurrency", type=int, default=8, help="rescores in flight at once (default 8)")
    parser.add_argument("--poll-s", type=float, default=1.0, help=argparse.SUPPRESS)


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def _account(session: AsyncSession, value: str) -> User:
    try:
        user = await session.get(User, uuid.UUID(value))
    except ValueError:
        user = (await session.exec(select(User).where(User.email == value.lower()))).first()
    if user is None:
        raise RunRefused(f"no account {value}")
    return user


async def _start(session: AsyncSession, args: argparse.Namespace, out: Progress) -> RescoreRun | None:
    """A new run (None for a dry run), committed with its selection counted."""
    if not args.rubric or not args.account:
        raise RunRefused("--rubric and --account are needed (or --run-id to resume a run)")
    user = await _account(session, args.account)
    scope = (user.id, args.mode == "live")
    try:
        rubric = await service.pin_rubric(session, scope, args.rubric)
    except AppError as exc:
        raise RunRefused(f"{exc.message}") from exc
    run = runs.new_run(
        scope,
        rubric,
        since=args.since,
        until=args.until,
        agent_id=args.agent,
        statuses=args.status or ["completed"],
        retranscribe=args.retranscribe,
        webhook=args.webhook,
    )
    run.selected = await runs.count_selected(session, run)
    if args.dry_run:
        out.line(f"dry run: {run.selected} analyses selected for {rubric[0]}@{rubric[1]}; nothing started")
        return None
    session.add(run)
    await session.commit()
    out.line(f"rescore run {run.id}: {run.selected} analyses selected; resume with --run-id {run.id}")
    return run


async def _queue_page(
    session: AsyncSession, settings: Settings, run: RescoreRun, page: list[Analysis], waker: Waker
) -> None:
    """Start a rescore of each analysis of ``page`` (a refusal is recorded as a failed rescore with
    its reason) and move the cursor past them, in the caller's transaction."""
    user = await session.get(User, run.user_id)
    if user is None:
        raise RunRefused(f"the account of run {run.id} is gone")
    principal = Principal(user=user, via="api_key", livemode=run.livemode)
    for analysis in page:
        ask = service.Ask(
            run.rubric_id,
            run.rubric_version or "",
            webhook=run.webhook and analysis.webhook_url is not None,
            retranscribe=run.retranscribe,
        )
        try:
            async with session.begin_nested():
                await service.start(
                    session,
                    principal,
                    analysis,
                    ask,
                    billing=settings.billing,
                    max_attempts=settings.worker.max_attempts,
                    waker=waker,
                    run_id=run.id,
                )
        except AppError as exc:
            session.add(service.refused(principal, analysis, ask, run.id, exc.message))
        run.cursor_created_at, run.cursor_id = analysis.created_at, analysis.id


async def step(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    run_id: uuid.UUID,
    concurrency: int,
    waker: Waker,
) -> tuple[RescoreRun, dict[str, int]]:
    """One turn of the run, in one transaction on its locked row: top up its rescores in flight to
    ``concurrency`` from the next page, or mark it completed once nothing is left."""
    async with sessionmaker() as session:
        found = await session.exec(select(RescoreRun).where(RescoreRun.id == run_id).with_for_update())
        run = found.first()
        if run is None:
            raise RunRefused(f"no rescore run {run_id}")
        if run.status == "running":
            in_flight = (await runs.counts(session, run.id)).get("processing", 0)
            room = max(0, concurrency - in_flight)
            page = await runs.next_page(session, run, room) if room else []
            await _queue_page(session, settings, run, page, waker)
            if room and not page and not in_flight:
                run.status, run.finished_at = "completed", utcnow()
            run.updated_at = utcnow()
            session.add(run)
            await session.commit()
            await run_after_commit(session)  # wake the dispatcher's rescoring runner
        return run, await runs.counts(session, run.id)


async def drive(settings: Settings, args: argparse.Namespace, out: Progress) -> RescoreRun | None:
    """Start (or resume) the run and work it to its end; the finished run (None: a dry run)."""
    engine = create_engine(settings)
    redis = _redis(settings)
    waker = build_waker(redis, settings.redis) if redis is not None else NoWaker()
    try:
        sessionmaker = create_sessionmaker(engine)
        if args.run_id is None:
            async with sessionmaker() as session:
                started = await _start(session, args, out)
            if started is None:
                return None
            run_id = started.id
        else:
            run_id = args.run_id
        return await _work(sessionmaker, settings, run_id, args, waker, out)
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


async def _work(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    run_id: uuid.UUID,
    args: argparse.Namespace,
    waker: Waker,
    out: Progress,
) -> RescoreRun:
    last, last_change = None, time.monotonic()
    while True:
        run, counts = await step(sessionmaker, settings, run_id, max(1, args.concurrency), waker)
        state = (counts.get("completed", 0), counts.get("failed", 0), counts.get("processing", 0))
        if state != last:
            last, last_change = state, time.monotonic()
            out.update(run, *state)
        elif time.monotonic() - last_change > STALL_HINT_S:
            out.line(
                "no progress for a minute: is the service (its dispatcher) running against this database?"
            )
            last_change = time.monotonic()
        if run.status == "completed":
            out.done(run, *state)
            return run
        await asyncio.sleep(args.poll_s)


def _redis(settings: Settings) -> object | None:
    if not settings.redis.url:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(settings.redis.url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m callcov.rescores.bulk", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(get_settings(), args)


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """The run, from a command line: exit status 2 with the reason when it cannot start."""
    try:
        asyncio.run(drive(settings, args, Progress(sys.stdout)))
    except RunRefused as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
