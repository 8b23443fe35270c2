"""Rubric queries, every one scoped to the caller's account and mode."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from callcov.models import AccountRubric, RubricVersion


def scoped(account_id: uuid.UUID, livemode: bool) -> SelectOfScalar[AccountRubric]:
    return select(AccountRubric).where(
        AccountRubric.user_id == account_id, AccountRubric.livemode == livemode
    )


async def get(
    session: AsyncSession, account_id: uuid.UUID, livemode: bool, rubric_id: uuid.UUID, *, lock: bool = False
) -> AccountRubric | None:
    query = scoped(account_id, livemode).where(AccountRubric.id == rubric_id)
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def version(session: AsyncSession, rubric_id: uuid.UUID, number: int) -> RubricVersion | None:
    query = select(RubricVersion).where(RubricVersion.rubric_id == rubric_id, RubricVersion.version == number)
    return (await session.exec(query)).first()


async def version_numbers(session: AsyncSession, rubric_id: uuid.UUID) -> list[int]:
    query = select(RubricVersion.version).where(RubricVersion.rubric_id == rubric_id)
    return sorted((await session.exec(query)).all())


def _listed(account_id: uuid.UUID, livemode: bool, include_archived: bool) -> SelectOfScalar[AccountRubric]:
    query = scoped(account_id, livemode)
    return query if include_archived else query.where(col(AccountRubric.archived_at).is_(None))


async def count(session: AsyncSession, account_id: uuid.UUID, livemode: bool, include_archived: bool) -> int:
    query = _listed(account_id, livemode, include_archived)
    return (await session.exec(select(func.count()).select_from(query.subquery()))).one()


async def page(
    session: AsyncSession,
    account_id: uuid.UUID,
    livemode: bool,
    include_archived: bool,
    skip: int,
    limit: int,
) -> list[AccountRubric]:
    query = _listed(account_id, livemode, include_archived)
    rows = await session.exec(
        query.order_by(col(AccountRubric.created_at).desc(), col(AccountRubric.id).desc())
        .offset(skip)
        .limit(limit)
    )
    return list(rows.all())
