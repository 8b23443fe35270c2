"""/users/me: the signed-in user's profile (JWT only)."""

from __future__ import annotations

from fastapi import APIRouter

from callcov.auth.deps import JwtUser
from callcov.auth.schemas import Message
from callcov.db import SessionDep
from callcov.emails.deps import OutboxDep
from callcov.errors import Forbidden, Unauthorized
from callcov.state import StateDep
from callcov.users import service
from callcov.users.errors import CurrentPasswordRequired, InvalidPassword, NoFieldsToUpdate
from callcov.users.schemas import UserPublic, UserUpdate

router = APIRouter(
    prefix="/users",
    tags=["users"],
    responses={401: Unauthorized.schema(), 403: Forbidden.schema()},
)


@router.get("/me")
async def read_me(user: JwtUser) -> UserPublic:
    return UserPublic.of(user)


@router.put(
    "/me",
    responses={
        400: {
            **NoFieldsToUpdate.schema(),
            "description": f"{NoFieldsToUpdate.default_message}; {CurrentPasswordRequired.default_message} "
            f"(`current_password_required`); {InvalidPassword.default_message} (`invalid_password`)",
        }
    },
)
async def update_me(
    data: UserUpdate, user: JwtUser, session: SessionDep, state: StateDep, outbox: OutboxDep
) -> UserPublic:
    """Update the profile. Changing the email or the password needs `current_password` and signs out
    every session (access and refresh tokens; log in again); API keys keep working."""
    return UserPublic.of(await service.update_user(session, state.settings.auth, outbox, user, data))


@router.delete("/me")
async def delete_me(user: JwtUser, session: SessionDep) -> Message:
    await service.deactivate_user(session, user)
    return Message(message="Account deactivated successfully")
