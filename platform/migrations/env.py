"""Alembic environment: runs migrations with a synchronous engine on SQLite or PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import callcov.models  # noqa: F401  (registers every table)
from callcov.config import get_settings

config = context.config


def sync_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    return url.replace("sqlite+aiosqlite://", "sqlite://")


def run() -> None:
    url = sync_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            compare_type=True,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
