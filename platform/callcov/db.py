"""Engine and session factories, the unit-of-work session dependency, and migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.config import Settings
from callcov.kit.resources import resource_dir

logger = logging.getLogger("callcov.db")

AfterCommit = Callable[[], Awaitable[None]]


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=settings.db.echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=settings.db.echo,
        pool_size=settings.db.pool_size,
        max_overflow=settings.db.max_overflow,
        pool_pre_ping=True,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine, *, autocommit: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``. ``autocommit`` sessions run each statement on its own, with no BEGIN and
    no COMMIT/ROLLBACK round trip: for single reads (and single-row writes) outside a unit of work."""
    bind = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
    return async_sessionmaker(bind, class_=AsyncSession, expire_on_commit=False)


async def insert_ignoring_conflict(
    session: AsyncSession, row: SQLModel, *, conflict_on: Sequence[str] | None = None
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING of ``row`` (PostgreSQL and SQLite), in the session's
    transaction: True if it was inserted. For rows that concurrent requests may both create;
    ``conflict_on`` names the unique columns (default: any conflict)."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table: Any = type(row).__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(**row.model_dump())
        .on_conflict_do_nothing(index_elements=conflict_on)
        .returning(*table.primary_key.columns)
    )
    result = await session.exec(statement)  # type: ignore[call-overload]
    return result.first() is not None  # RETURNING: rowcount is not reliable through the ORM session


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once the request's transaction has committed (never if it rolls back)."""
    session.info.setdefault("after_commit", []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop("after_commit", []):
        try:
            await callback()
        except Exception:
            logger.exception("after-commit callback failed")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Unit of work: services flush, this commits on success and rolls back on any error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.callcov.sessionmaker  # AppState
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        await run_after_commit(session)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def run_migrations(settings: Settings, revision: str = "head") -> None:
    """``alembic upgrade head`` against the configured database (SQLite file or PostgreSQL)."""
    from alembic import command

    url = settings.database_url
    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
