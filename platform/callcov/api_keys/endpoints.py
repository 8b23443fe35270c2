"""/api-keys: create (shown once), list, revoke. JWT only: an API key cannot manage keys."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from callcov.api_keys import service
from callcov.api_keys.errors import ApiKeyNotFound, TooManyApiKeys
from callcov.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyPublic
from callcov.auth.deps import JwtUser
from callcov.auth.schemas import Message
from callcov.db import SessionDep
from callcov.errors import Forbidden, Unauthorized
from callcov.kit.pagination import PageDep
from callcov.state import StateDep

router = APIRouter(
    prefix="/api-keys",
    tags=["api-keys"],
    responses={401: Unauthorized.schema(), 403: Forbidden.schema()},
)


@router.post("", status_code=status.HTTP_201_CREATED, responses={400: TooManyApiKeys.schema()})
async def create_api_key(
    data: ApiKeyCreate, user: JwtUser, session: SessionDep, state: StateDep
) -> ApiKeyCreated:
    key, raw = await service.create_api_key(session, state.settings.auth, user, data)
    return ApiKeyCreated(api_key=raw, **ApiKeyPublic.of(key, active=True).model_dump())


@router.get("")
async def list_api_keys(
    user: JwtUser,
    session: SessionDep,
    page: PageDep,
    include_expired: Annotated[bool, Query(description="Include revoked and expired keys.")] = False,
) -> ApiKeyList:
    rows, total = await service.list_api_keys(session, user, include_expired=include_expired, page=page)
    return ApiKeyList(
        api_keys=[ApiKeyPublic.of(key, active=active) for key, active in rows],
        total=total,
        skip=page.skip,
        limit=page.limit,
        has_more=page.skip + len(rows) < total,
    )


@router.delete("/{api_key_id}", responses={404: ApiKeyNotFound.schema()})
async def revoke_api_key(api_key_id: uuid.UUID, user: JwtUser, session: SessionDep) -> Message:
    await service.revoke_api_key(session, user, api_key_id)
    return Message(message="API key expired successfully")
