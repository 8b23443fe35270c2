"""Strings that can be stored: PostgreSQL text cannot hold NUL characters, so they are refused at
validation (a 422 naming the field) instead of failing in the database."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


SafeStr = Annotated[str, AfterValidator(reject_nul), Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})]
