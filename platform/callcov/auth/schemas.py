from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field

from callcov.auth.passwords import Password


def normalize_phone(value: str) -> str:
    """E.164: an optional +, a country code not starting with 0, 7 to 15 digits in all."""
    if not re.fullmatch(r"\+?[1-9]\d{6,14}", value):
        raise ValueError("phone_number must be in E.164 format, e.g. +12025551234")
    return value if value.startswith("+") else "+" + value


PhoneNumber = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"pattern": r"^\+?[1-9]\d{6,14}$"}),
    AfterValidator(normalize_phone),
]


class RegisterRequest(BaseModel):
    email: EmailStr
    password: Password
    phone_number: PhoneNumber | None = None


class LoginRequest(BaseModel):
    email: EmailStr
    password: str = Field(max_length=128)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=4096)


class VerifyEmailRequest(BaseModel):
    code: str = Field(min_length=1, max_length=256)


class EmailRequest(BaseModel):
    email: EmailStr


class PasswordResetConfirm(BaseModel):
    token: str = Field(min_length=1, max_length=256)
    new_password: Password


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Message(BaseModel):
    message: str
    success: bool = True
