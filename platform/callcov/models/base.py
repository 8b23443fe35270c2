"""Column helpers shared by the table modules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field

from callcov.kit.time import UTCDateTime, utcnow


def id_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def created_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def optional_time_field(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)


def user_fk(*, ondelete: str = "CASCADE") -> Any:
    return Field(foreign_key="users.id", ondelete=ondelete, index=True, nullable=False)


__all__ = ["created_field", "datetime", "id_field", "optional_time_field", "user_fk"]
