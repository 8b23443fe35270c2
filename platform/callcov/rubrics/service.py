"""Rubrics: creating, versioning, archiving and reading them, and resolving a reference (built-in or
the account's) for a submission and for the scoring stage."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.kit.pagination import PageParams
from callcov.kit.time import to_unix, utcnow
from callcov.models import AccountRubric, RubricVersion
from callcov.rubrics import builtins, repository
from callcov.rubrics.errors import BuiltinReadOnly, RubricArchived, RubricNotFoundError, RubricUnavailable
from callcov.rubrics.refs import RubricRef, parse_ref, public_id
from callcov.rubrics.schemas import RubricPublic, RubricSummary
from callcov.rubrics.validation import validate_document
from callcov.scoring.rubric import Rubric, RubricInvalid, RubricNotFound

Scope = tuple[uuid.UUID, bool]  # (account id, livemode)


def _document(rubric: Rubric) -> dict[str, Any]:
    return rubric.model_dump(mode="json", by_alias=True)


def _builtin_summary(rubric: Rubric) -> dict[str, Any]:
    versions = [str(v) for v in builtins.builtin_versions(rubric.id)]
    return {
        "id": rubric.id,
        "name": rubric.name,
        "description": rubric.description,
        "builtin": True,
        "version": rubric.version,
        "latest_version": versions[-1],
        "versions": versions,
        "archived": False,
        "livemode": None,
        "created": None,
    }


def _account_summary(row: AccountRubric, version: int) -> dict[str, Any]:
    return {
        "id": public_id(row.id),
        "name": row.name,
        "description": row.description,
        "builtin": False,
        "version": str(version),
        "latest_version": str(row.latest_version),
        "versions": [str(v) for v in range(1, row.latest_version + 1)],
        "archived": row.archived_at is not None,
        "livemode": row.livemode,
        "created": to_unix(row.created_at) or 0,
    }


async def _own(session: AsyncSession, scope: Scope, ref: RubricRef, *, lock: bool = False) -> AccountRubric:
    row_id = ref.account_uuid
    row = await repository.get(session, *scope, row_id, lock=lock) if row_id else None
    if row is None:
        raise RubricNotFoundError()
    return row


async def get(session: AsyncSession, scope: Scope, value: str) -> RubricPublic:
    """``{id}`` (its latest version) or ``{id}@{version}``, built-in or the account's; else 404."""
    ref = parse_ref(value)
    if ref is None:
        raise RubricNotFoundError()
    if not ref.is_account:
        try:
            rubric = builtins.builtin(ref.id, ref.version)
        except (RubricNotFound, RubricInvalid) as exc:
            raise RubricNotFoundError() from exc
        return RubricPublic(**_builtin_summary(rubric), document=_document(rubric))
    row = await _own(session, scope, ref)
    stored = await repository.version(session, row.id, ref.version or row.latest_version)
    if stored is None:
        raise RubricNotFoundError()
    return RubricPublic(**_account_summary(row, stored.version), document=stored.document)


async def list_page(
    session: AsyncSession, scope: Scope, page: PageParams, *, include_archived: bool
) -> tuple[list[RubricSummary], int]:
    """The built-in rubrics first (by id), then the account's, newest first."""
    ids = builtins.builtin_ids()
    shown = ids[page.skip : page.skip + page.limit]
    items = [RubricSummary(**_builtin_summary(builtins.builtin(i))) for i in shown]
    total = len(ids) + await repository.count(session, *scope, include_archived)
    room = page.limit - len(items)
    if room > 0:
        rows = await repository.page(session, *scope, include_archived, max(0, page.skip - len(ids)), room)
        items += [RubricSummary(**_account_summary(row, row.latest_version)) for row in rows]
    return items, total


async def create(
    session: AsyncSession, scope: Scope, name: str, description: str, document: dict[str, Any]
) -> RubricPublic:
    row = AccountRubric(user_id=scope[0], livemode=scope[1], name=name, description=description)
    rubric = await validate_document(document, public_id(row.id), 1)
    session.add(row)
    await session.flush()
    session.add(RubricVersion(rubric_id=row.id, version=1, document=_document(rubric)))
    await session.flush()
    return RubricPublic(**_account_summary(row, 1), document=_document(rubric))


async def _own_to_change(session: AsyncSession, scope: Scope, value: str) -> AccountRubric:
    """The account's rubric that ``value`` (an unversioned reference) names, locked for a change."""
    ref = parse_ref(value)
    if ref is not None and not ref.is_account and ref.version is None:
        raise BuiltinReadOnly()
    if ref is None or ref.version is not None:
        raise RubricNotFoundError()
    return await _own(session, scope, ref, lock=True)


async def add_version(
    session: AsyncSession, scope: Scope, value: str, document: dict[str, Any]
) -> RubricPublic:
    row = await _own_to_change(session, scope, value)
    if row.archived_at is not None:
        raise RubricArchived()
    number = row.latest_version + 1
    rubric = await validate_document(document, public_id(row.id), number)
    row.latest_version, row.updated_at = number, utcnow()
    session.add(row)
    stored = _document(rubric)
    session.add(RubricVersion(rubric_id=row.id, version=number, document=stored))
    await session.flush()
    return RubricPublic(**_account_summary(row, number), document=stored)


async def archive(session: AsyncSession, scope: Scope, value: str) -> RubricPublic:
    """Archive (idempotent): the rubric can no longer be chosen; analyses that used it keep naming it."""
    row = await _own_to_change(session, scope, value)
    if row.archived_at is None:
        row.archived_at = row.updated_at = utcnow()
        session.add(row)
        await session.flush()
    stored = await repository.version(session, row.id, row.latest_version)
    return RubricPublic(
        **_account_summary(row, row.latest_version), document=stored.document if stored else {}
    )


async def choose(session: AsyncSession, scope: Scope, value: str | None) -> tuple[str, str | None]:
    """What a submission's ``rubric`` field names, as (rubric id, version or None for a built-in's
    latest at scoring time); an account rubric's version is fixed now. Unknown, another account's
    and archived rubrics are refused (400 validation_error)."""
    ref = parse_ref(value or "default")
    unknown = RubricUnavailable(f"Unknown rubric '{value}'", details={"rubric": value})
    if ref is None:
        raise unknown
    if not ref.is_account:
        try:
            builtins.builtin(ref.id, ref.version)
        except (RubricNotFound, RubricInvalid) as exc:
            raise unknown from exc
        return ref.id, None if ref.version is None else str(ref.version)
    try:
        row = await _own(session, scope, ref)
    except RubricNotFoundError as exc:
        raise unknown from exc
    if row.archived_at is not None:
        raise RubricUnavailable(
            f"The rubric '{ref.id}' is archived and can no longer be chosen", details={"rubric": value}
        )
    number = ref.version or row.latest_version
    if number > row.latest_version:
        raise unknown
    return ref.id, str(number)


async def load_for_scoring(
    session: AsyncSession, scope: Scope, rubric_id: str, version: str | None
) -> Rubric:
    """The ``Rubric`` an analysis recorded (archived ones too). Raises ``RubricNotFound``."""
    ref = RubricRef(rubric_id, int(version) if version and version.isdigit() else None)
    if not ref.is_account:
        return builtins.builtin(ref.id, ref.version)
    row_id = ref.account_uuid
    row = await repository.get(session, *scope, row_id) if row_id else None
    stored = await repository.version(session, row.id, ref.version or row.latest_version) if row else None
    if stored is None:
        raise RubricNotFound(f"rubric {rubric_id!r} version {version} not found")
    return Rubric.model_validate(stored.document)
