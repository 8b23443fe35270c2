"""/auth: register, login, refresh, email verification and password reset (all public)."""

from __future__ import annotations

from fastapi import APIRouter, status

from callcov.auth import service
from callcov.auth.errors import (
    AccountDeactivated,
    EmailAlreadyRegistered,
    EmailAlreadyVerified,
    EmailNotVerified,
    InvalidCredentials,
    InvalidEmailToken,
    TooManyLoginAttempts,
    TooManyVerificationEmails,
    UserNotFound,
)
from callcov.auth.schemas import (
    EmailRequest,
    LoginRequest,
    Message,
    PasswordResetConfirm,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    VerifyEmailRequest,
)
from callcov.db import SessionDep
from callcov.emails.deps import OutboxDep
from callcov.errors import AppError, Unauthorized
from callcov.ratelimit.lockout import login_key
from callcov.state import StateDep

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses={400: EmailAlreadyRegistered.schema()},
)
async def register(data: RegisterRequest, session: SessionDep, state: StateDep, outbox: OutboxDep) -> Message:
    await service.register(session, state.settings.auth, outbox, data)
    return Message(message="User registered successfully. Please check your email for the verification link.")


@router.post(
    "/login",
    responses={
        401: InvalidCredentials.schema(),
        403: EmailNotVerified.schema(),
        429: TooManyLoginAttempts.schema(),
    },
)
async def login(data: LoginRequest, session: SessionDep, state: StateDep) -> TokenPair:
    """Failed logins lock the email out for a while that grows with each further failure
    (``callcov.ratelimit.lockout``), whether or not an account has that email."""
    key, lockout = login_key(data.email), state.login_lockout
    retry_after = await lockout.attempt(key)
    if retry_after:
        raise TooManyLoginAttempts(
            f"Too many failed logins for this email: retry in {retry_after} s",
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    try:
        user = await service.authenticate(session, data.email, data.password)
    except InvalidCredentials:
        raise
    except AppError:  # the password was right; the account may not sign in (403)
        await lockout.clear(key)
        raise
    await lockout.clear(key)
    return await service.issue_tokens(session, state.settings.auth, user)


@router.post("/refresh", responses={401: Unauthorized.schema()})
async def refresh(data: RefreshRequest, session: SessionDep, state: StateDep) -> TokenPair:
    return await service.refresh(session, state.settings.auth, data.refresh_token)


@router.post("/verify-email", responses={400: InvalidEmailToken.schema(), 403: AccountDeactivated.schema()})
async def verify_email(data: VerifyEmailRequest, session: SessionDep, state: StateDep) -> TokenPair:
    return await service.verify_email(session, state.settings.auth, data.code)


@router.post(
    "/resend-verification",
    responses={
        400: EmailAlreadyVerified.schema(),
        404: UserNotFound.schema(),
        429: TooManyVerificationEmails.schema(),
    },
)
async def resend_verification(
    data: EmailRequest, session: SessionDep, state: StateDep, outbox: OutboxDep
) -> Message:
    await service.resend_verification(session, state.settings.auth, outbox, data.email)
    return Message(message="Verification email sent successfully")


@router.post("/password-reset")
async def password_reset(
    data: EmailRequest, session: SessionDep, state: StateDep, outbox: OutboxDep
) -> Message:
    await service.request_password_reset(session, state.settings.auth, outbox, data.email)
    return Message(message="If the email exists, a password reset link has been sent")


@router.post("/password-reset/confirm", responses={400: InvalidEmailToken.schema()})
async def password_reset_confirm(data: PasswordResetConfirm, session: SessionDep) -> Message:
    await service.confirm_password_reset(session, data.token, data.new_password)
    return Message(message="Password reset successfully")
