"""Offset pagination shared by every list endpoint: ``skip``/``limit`` (``offset`` is an alias of ``skip``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_SKIP = 2**31 - 1  # beyond any list, and within every database's integer range


@dataclass(frozen=True)
class PageParams:
    skip: int
    limit: int


def page_params(
    skip: Annotated[int | None, Query(ge=0, le=MAX_SKIP, description="Number of records to skip.")] = None,
    offset: Annotated[int | None, Query(ge=0, le=MAX_SKIP, description="Alias of `skip`.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 100).")] = DEFAULT_LIMIT,
) -> PageParams:
    start = skip if skip is not None else (offset if offset is not None else 0)
    return PageParams(skip=start, limit=limit)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    items: list[T]
    total: int
    skip: int
    limit: int
    has_more: bool

    @classmethod
    def build(cls, items: list[T], total: int, params: PageParams) -> Page[T]:
        return cls(
            items=items,
            total=total,
            skip=params.skip,
            limit=params.limit,
            has_more=params.skip + len(items) < total,
        )
