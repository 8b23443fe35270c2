"""The signed-in user's own profile: update and soft deactivation."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.auth.errors import EmailAlreadyRegistered, PhoneAlreadyInUse
from callcov.auth.passwords import hash_password
from callcov.auth.service import revoke_refresh_tokens, send_verification
from callcov.billing.accounts import schedule_close
from callcov.config import AuthSettings
from callcov.emails.service import Outbox
from callcov.kit.time import utcnow
from callcov.models import ApiKey, User
from callcov.users.errors import NoFieldsToUpdate
from callcov.users.schemas import UserUpdate


async def update_user(
    session: AsyncSession, settings: AuthSettings, outbox: Outbox, user: User, data: UserUpdate
) -> User:
    """Changing the email asks for verification again; changing the password ends other sessions."""
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        raise NoFieldsToUpdate()
    email = changes.get("email", "").lower()
    if email and email != user.email:
        if (await session.exec(select(User).where(User.email == email))).first():
            raise EmailAlreadyRegistered("Email already in use")
        user.email, user.is_verified = email, False
        await send_verification(session, settings, outbox, user)
    phone = changes.get("phone_number")
    if phone and phone != user.phone_number:
        if (await session.exec(select(User).where(User.phone_number == phone))).first():
            raise PhoneAlreadyInUse()
        user.phone_number = phone
    if "password" in changes:
        user.hashed_password = await hash_password(changes["password"])
        await revoke_refresh_tokens(session, user_id=user.id)
    user.updated_at = utcnow()
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise EmailAlreadyRegistered("Email or phone number already in use") from exc
    return user


async def deactivate_user(session: AsyncSession, user: User) -> None:
    """Soft delete: login refused, every API key and refresh token revoked, data kept, and the paid
    plan cancelled now (a job: Stripe is not called in the request)."""
    now = utcnow()
    user.is_active = False
    user.updated_at = now
    session.add(user)
    await session.exec(
        update(ApiKey)
        .where(col(ApiKey.user_id) == user.id, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=now, updated_at=now)
    )
    await revoke_refresh_tokens(session, user_id=user.id)
    schedule_close(session, user.id)  # a paid plan ends now, its overage billed (billing/accounts.py)
