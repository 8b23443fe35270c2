"""/rubrics: the built-in rubrics and the account's own, their versions, and the document schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from callcov.auth.deps import AnyPrincipal
from callcov.auth.principal import Principal
from callcov.db import SessionDep
from callcov.errors import ErrorBody, Unauthorized
from callcov.kit.pagination import Page, PageDep
from callcov.rubrics import service
from callcov.rubrics.errors import BuiltinReadOnly, RubricArchived, RubricNotFoundError
from callcov.rubrics.refs import REF_PATTERN
from callcov.rubrics.schemas import RubricCreate, RubricPublic, RubricSummary, RubricVersionCreate
from callcov.scoring.rubric import Rubric

router = APIRouter(prefix="/rubrics", tags=["rubrics"], responses={401: Unauthorized.schema()})

RefPath = Annotated[
    str,
    Path(pattern=REF_PATTERN, description="A rubric id (`default`, `rub_…`), optionally `@version`."),
]
INVALID = {422: {"model": ErrorBody, "description": "The document does not validate; `loc` is its path"}}


def _scope(principal: Principal) -> service.Scope:
    return principal.account_id, principal.livemode


@router.get("")
async def list_rubrics(
    principal: AnyPrincipal,
    session: SessionDep,
    page: PageDep,
    include_archived: Annotated[bool, Query(description="Also list archived rubrics.")] = False,
) -> Page[RubricSummary]:
    """The built-in rubrics, then the account's own (newest first)."""
    items, total = await service.list_page(
        session, _scope(principal), page, include_archived=include_archived
    )
    return Page[RubricSummary].build(items, total, page)


@router.get("/schema")
async def rubric_schema(principal: AnyPrincipal) -> dict[str, Any]:
    """The JSON Schema of a rubric document."""
    del principal
    return Rubric.model_json_schema(by_alias=True)


@router.post("", status_code=201, responses=INVALID)
async def create_rubric(body: RubricCreate, principal: AnyPrincipal, session: SessionDep) -> RubricPublic:
    """A new rubric, at version 1."""
    return await service.create(session, _scope(principal), body.name, body.description, body.document)


@router.get("/{rubric_ref}", responses={404: RubricNotFoundError.schema()})
async def get_rubric(rubric_ref: RefPath, principal: AnyPrincipal, session: SessionDep) -> RubricPublic:
    """The latest version's document, or one version's with `{id}@{version}`."""
    return await service.get(session, _scope(principal), rubric_ref)


@router.post(
    "/{rubric_ref}/versions",
    status_code=201,
    responses={
        **INVALID,
        400: BuiltinReadOnly.schema(),
        404: RubricNotFoundError.schema(),
        409: RubricArchived.schema(),
    },
)
async def add_rubric_version(
    rubric_ref: RefPath, body: RubricVersionCreate, principal: AnyPrincipal, session: SessionDep
) -> RubricPublic:
    """A new version (versions are immutable); it becomes the latest."""
    return await service.add_version(session, _scope(principal), rubric_ref, body.document)


@router.delete("/{rubric_ref}", responses={400: BuiltinReadOnly.schema(), 404: RubricNotFoundError.schema()})
async def archive_rubric(rubric_ref: RefPath, principal: AnyPrincipal, session: SessionDep) -> RubricPublic:
    """Archive: the rubric can no longer be chosen; analyses that used it still name it."""
    return await service.archive(session, _scope(principal), rubric_ref)
