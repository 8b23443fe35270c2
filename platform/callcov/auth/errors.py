from __future__ import annotations

from callcov.errors import AppError, BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized


class EmailAlreadyRegistered(BadRequest):
    """An email that another account has (registration, or a profile change: "Email already in use")."""

    default_message = "Email already registered"


class PhoneAlreadyInUse(BadRequest):
    default_message = "Phone number already in use"


class InvalidCredentials(Unauthorized):
    default_message = "Incorrect email or password"


class EmailNotVerified(Forbidden):
    code = "email_not_verified"
    default_message = "Please verify your email address before logging in"


class AccountDeactivated(Forbidden):
    code = "account_deactivated"
    default_message = "This account has been deactivated"


class RefreshTokenReused(Unauthorized):
    default_message = "Refresh token already used: every session of this login has been revoked"


class InvalidEmailToken(BadRequest):
    code = "invalid_token"
    default_message = "Invalid or expired token"


class UserNotFound(NotFound):
    default_message = "User not found"


class EmailAlreadyVerified(BadRequest):
    default_message = "Email already verified"


class TooManyVerificationEmails(TooManyRequests):
    default_message = "Too many verification emails for this address: try again in an hour"


class TooManyLoginAttempts(TooManyRequests):
    """The same for every email, registered or not: it reveals nothing about accounts."""

    default_message = "Too many failed logins for this email: try again later"


__all__ = ["AppError"]
