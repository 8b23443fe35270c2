"""``insert_ignoring_conflict``: the one INSERT … ON CONFLICT DO NOTHING, on PostgreSQL and SQLite.
It says whether the row was inserted (the Stripe webhook answers ``duplicate`` from it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import sqlite_settings

from callcov.config import Settings
from callcov.db import create_engine, create_sessionmaker, insert_ignoring_conflict
from callcov.models import BillingEvent

pytestmark = pytest.mark.asyncio


def _event(stripe_id: str) -> BillingEvent:
    return BillingEvent(
        stripe_event_id=stripe_id, type="invoice.paid", stripe_created=1, payload={"id": stripe_id}
    )


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_insert_ignoring_conflict_tells_whether_it_inserted(
    database: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory() if database == "postgresql" else sqlite_settings(tmp_path)
    engine = create_engine(settings)
    stripe_id = f"evt_{uuid.uuid4().hex}"
    try:
        async with create_sessionmaker(engine)() as session:
            assert await insert_ignoring_conflict(session, _event(stripe_id), conflict_on=["stripe_event_id"])
            assert not await insert_ignoring_conflict(
                session, _event(stripe_id), conflict_on=["stripe_event_id"]
            )
            assert not await insert_ignoring_conflict(session, _event(stripe_id))  # any conflict
            await session.commit()
        async with create_sessionmaker(engine)() as session:
            rows = (await session.exec(BillingEvent.__table__.select())).all()  # type: ignore[attr-defined, call-overload]
            assert [row.stripe_event_id for row in rows].count(stripe_id) == 1
    finally:
        await engine.dispose()
