"""Accounts: registration, login, token rotation, email verification and password reset."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from callcov.api_keys.service import revoke_all_api_keys
from callcov.auth import jwt as tokens
from callcov.auth.errors import (
    AccountDeactivated,
    EmailAlreadyRegistered,
    EmailAlreadyVerified,
    EmailNotVerified,
    InvalidCredentials,
    InvalidEmailToken,
    PhoneAlreadyInUse,
    RefreshTokenReused,
    TooManyVerificationEmails,
    UserNotFound,
)
from callcov.auth.passwords import hash_password, verify_password
from callcov.auth.schemas import RegisterRequest, TokenPair
from callcov.config import AuthSettings
from callcov.emails.service import Outbox, password_reset_email, queue_email, verification_email
from callcov.errors import Unauthorized
from callcov.kit.time import utcnow
from callcov.kit.tokens import generate_url_token, sha256_hex
from callcov.models import EmailToken, RefreshToken, User

VERIFY, RESET = "verify", "reset"


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.exec(select(User).where(User.email == email.lower()))).first()


async def register(
    session: AsyncSession, settings: AuthSettings, outbox: Outbox, data: RegisterRequest
) -> User:
    email = data.email.lower()
    if await get_user_by_email(session, email) is not None:
        raise EmailAlreadyRegistered()
    if (
        data.phone_number
        and (await session.exec(select(User).where(User.phone_number == data.phone_number))).first()
    ):
        raise PhoneAlreadyInUse()
    user = User(
        email=email, phone_number=data.phone_number, hashed_password=await hash_password(data.password)
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the unique index
        raise EmailAlreadyRegistered() from exc
    await send_verification(session, settings, outbox, user)
    return user


async def send_verification(
    session: AsyncSession, settings: AuthSettings, outbox: Outbox, user: User
) -> None:
    token = await create_email_token(session, user.id, VERIFY, settings.email_token_ttl_s)
    subject, body = verification_email(outbox.settings.frontend_url, token, settings.email_token_ttl_s)
    queue_email(session, outbox, to=user.email, subject=subject, body=body, kind="verify_email", code=token)


async def create_email_token(
    session: AsyncSession, user_id: uuid.UUID, purpose: str, ttl_s: int, *, keep_open: int = 0
) -> str:
    """A new single-use token. The earlier unused ones of the same purpose stop working, except the
    newest ``keep_open`` still valid ones (reset links: a new request does not kill the last ones)."""
    now = utcnow()
    keep: list[uuid.UUID] = []
    if keep_open:
        newest = (
            select(col(EmailToken.id))
            .where(col(EmailToken.user_id) == user_id, col(EmailToken.purpose) == purpose)
            .where(col(EmailToken.used_at).is_(None), col(EmailToken.revoked_at).is_(None))
            .where(col(EmailToken.expires_at) > now)
            .order_by(col(EmailToken.created_at).desc())
            .limit(keep_open)
        )
        keep = list((await session.exec(newest)).all())
    await revoke_email_tokens(session, user_id, purpose, keep=keep)
    raw = generate_url_token()
    session.add(
        EmailToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=sha256_hex(raw),
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    await session.flush()
    return raw


async def consume_email_token(session: AsyncSession, raw: str, purpose: str) -> User:
    now = utcnow()
    token = (
        await session.exec(
            select(EmailToken).where(EmailToken.token_hash == sha256_hex(raw), EmailToken.purpose == purpose)
        )
    ).first()
    if token is None:
        raise InvalidEmailToken()
    claimed = await session.exec(
        update(EmailToken)
        .where(col(EmailToken.id) == token.id, col(EmailToken.used_at).is_(None))
        .where(col(EmailToken.revoked_at).is_(None), col(EmailToken.expires_at) > now)
        .values(used_at=now)
    )
    user = await session.get(User, token.user_id)
    if claimed.rowcount != 1 or user is None:
        raise InvalidEmailToken()
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """One error for an unknown email or a wrong password, with the same hashing cost for both."""
    user = await get_user_by_email(session, email)
    ok, new_hash = await verify_password(password, user.hashed_password if user else None)
    if user is None or not ok:
        raise InvalidCredentials()
    if new_hash:
        user.hashed_password = new_hash
        session.add(user)
    if not user.is_active:
        raise AccountDeactivated()
    if not user.is_verified:
        raise EmailNotVerified()
    return user


async def issue_tokens(
    session: AsyncSession, settings: AuthSettings, user: User, family_id: uuid.UUID | None = None
) -> TokenPair:
    row = RefreshToken(
        user_id=user.id,
        family_id=family_id or uuid.uuid4(),
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_s),
    )
    session.add(row)
    await session.flush()
    return TokenPair(
        access_token=tokens.issue_token(
            settings, user.id, "access", settings.access_token_ttl_s, ver=user.token_version
        ),
        refresh_token=tokens.issue_token(
            settings, user.id, "refresh", settings.refresh_token_ttl_s, jti=row.id.hex, fam=row.family_id.hex
        ),
        expires_in=settings.access_token_ttl_s,
    )


async def refresh(session: AsyncSession, settings: AuthSettings, raw_token: str) -> TokenPair:
    claims = tokens.decode_refresh_token(settings, raw_token)
    now = utcnow()
    rotated = await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.id) == claims.jti, col(RefreshToken.used_at).is_(None))
        .where(col(RefreshToken.revoked_at).is_(None), col(RefreshToken.expires_at) > now)
        .values(used_at=now)
    )
    if rotated.rowcount != 1:
        row = await session.get(RefreshToken, claims.jti)
        if row is not None and row.used_at is not None:
            # Written exception to the unit of work: the revocation must survive the 401 below.
            await revoke_refresh_tokens(session, family_id=row.family_id)
            await session.commit()
            raise RefreshTokenReused()
        raise Unauthorized("Invalid refresh token")
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid refresh token")
    return await issue_tokens(session, settings, user, family_id=claims.family_id)


async def revoke_refresh_tokens(
    session: AsyncSession, *, user_id: uuid.UUID | None = None, family_id: uuid.UUID | None = None
) -> None:
    statement = update(RefreshToken).where(col(RefreshToken.revoked_at).is_(None)).values(revoked_at=utcnow())
    if user_id is not None:
        statement = statement.where(col(RefreshToken.user_id) == user_id)
    if family_id is not None:
        statement = statement.where(col(RefreshToken.family_id) == family_id)
    await session.exec(statement)


async def end_sessions(session: AsyncSession, user: User) -> None:
    """Every session of the user ends: its refresh tokens are revoked and the access tokens issued
    so far stop working (they carry an older ``token_version``). API keys are not touched."""
    user.token_version += 1
    session.add(user)
    await revoke_refresh_tokens(session, user_id=user.id)


async def revoke_email_tokens(
    session: AsyncSession, user_id: uuid.UUID, purpose: str, *, keep: list[uuid.UUID] | None = None
) -> None:
    """Every unused token of that purpose but ``keep`` stops working (e.g. reset links after a
    password change)."""
    statement = (
        update(EmailToken)
        .where(col(EmailToken.user_id) == user_id, col(EmailToken.purpose) == purpose)
        .where(col(EmailToken.used_at).is_(None), col(EmailToken.revoked_at).is_(None))
    )
    if keep:
        statement = statement.where(col(EmailToken.id).not_in(keep))
    await session.exec(statement.values(revoked_at=utcnow()))


async def verify_email(session: AsyncSession, settings: AuthSettings, code: str) -> TokenPair:
    user = await consume_email_token(session, code, VERIFY)
    if not user.is_active:
        raise AccountDeactivated()
    user.is_verified = True
    user.updated_at = utcnow()
    session.add(user)
    return await issue_tokens(session, settings, user)


async def tokens_sent_last_hour(session: AsyncSession, user_id: uuid.UUID, purpose: str) -> int:
    """Emails with a token of that purpose sent to the user in the last hour (the per-email limit)."""
    since = utcnow() - timedelta(hours=1)
    query = select(func.count()).select_from(EmailToken)
    query = query.where(EmailToken.user_id == user_id, EmailToken.purpose == purpose)
    return int((await session.exec(query.where(EmailToken.created_at > since))).one())


async def resend_verification(
    session: AsyncSession, settings: AuthSettings, outbox: Outbox, email: str
) -> None:
    user = await get_user_by_email(session, email)
    if user is None:
        raise UserNotFound()
    if user.is_verified:
        raise EmailAlreadyVerified()
    if await tokens_sent_last_hour(session, user.id, VERIFY) >= settings.resend_verification_per_hour:
        raise TooManyVerificationEmails(headers={"Retry-After": "3600"})
    await send_verification(session, settings, outbox, user)


async def request_password_reset(
    session: AsyncSession, settings: AuthSettings, outbox: Outbox, email: str
) -> None:
    user = await get_user_by_email(session, email)
    if user is None or not user.is_active:
        return
    if await tokens_sent_last_hour(session, user.id, RESET) >= settings.password_reset_per_hour:
        return  # the same answer, but no email and no new token: the links already sent stay valid
    ttl = settings.email_token_ttl_s
    token = await create_email_token(session, user.id, RESET, ttl, keep_open=settings.open_reset_links - 1)
    subject, body = password_reset_email(outbox.settings.frontend_url, token, ttl)
    queue_email(session, outbox, to=user.email, subject=subject, body=body, kind="password_reset", code=token)


async def confirm_password_reset(session: AsyncSession, token: str, new_password: str) -> None:
    """Account recovery: the new password, and everything a thief may hold ends: every session, every
    other reset link, and every API key (a stolen session may have minted one)."""
    user = await consume_email_token(session, token, RESET)
    user.hashed_password = await hash_password(new_password)
    user.updated_at = utcnow()
    await end_sessions(session, user)
    await revoke_email_tokens(session, user.id, RESET)
    await revoke_all_api_keys(session, user.id)
