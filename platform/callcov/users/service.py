"""The signed-in user's own profile: update and soft deactivation."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.api_keys.service import revoke_all_api_keys
from callcov.auth.errors import EmailAlreadyRegistered, PhoneAlreadyInUse
from callcov.auth.passwords import hash_password, verify_password
from callcov.auth.service import RESET, end_sessions, revoke_email_tokens, send_verification
from callcov.billing.accounts import schedule_close
from callcov.config import AuthSettings
from callcov.emails.service import Outbox
from callcov.kit.time import utcnow
from callcov.models import User
from callcov.users.errors import CurrentPasswordRequired, InvalidPassword, NoFieldsToUpdate
from callcov.users.schemas import UserUpdate


async def check_current_password(user: User, current_password: str | None) -> None:
    """A sensitive change proves the password, not only a (possibly stolen) access token."""
    if current_password is None:
        raise CurrentPasswordRequired()
    ok, new_hash = await verify_password(current_password, user.hashed_password)
    if not ok:
        raise InvalidPassword()
    if new_hash:
        user.hashed_password = new_hash


async def update_user(
    session: AsyncSession, settings: AuthSettings, outbox: Outbox, user: User, data: UserUpdate
) -> User:
    """The email and the password need ``current_password``. Changing either ends every session
    (refresh and access tokens) and every pending reset link; API keys stay. A new email must be
    verified again before the next login."""
    changes = data.model_dump(exclude_unset=True, exclude_none=True, exclude={"current_password"})
    if not changes:
        raise NoFieldsToUpdate()
    email = changes.get("email", "").lower()
    new_email = bool(email) and email != user.email
    sensitive = new_email or "password" in changes
    if sensitive:
        await check_current_password(user, data.current_password)
    if new_email:
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
    if sensitive:
        await end_sessions(session, user)
        await revoke_email_tokens(session, user.id, RESET)
    user.updated_at = utcnow()
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise EmailAlreadyRegistered("Email or phone number already in use") from exc
    return user


async def deactivate_user(session: AsyncSession, user: User) -> None:
    """Soft delete: login refused, every API key and session revoked, data kept, and the paid plan
    cancelled now (a job: Stripe is not called in the request)."""
    user.is_active = False
    user.updated_at = utcnow()
    session.add(user)
    await revoke_all_api_keys(session, user.id)
    await end_sessions(session, user)
    schedule_close(session, user.id)  # a paid plan ends now, its overage billed (billing/accounts.py)
