from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field, user_fk


class AccountRubric(SQLModel, table=True):
    """An account's own scoring rubric (issue 14), scoped to (user_id, livemode). Its versions are
    ``RubricVersion`` rows; ``archived_at`` set: it can no longer be chosen, past results still name it."""

    __tablename__ = "rubrics"
    __table_args__ = (Index("ix_rubrics_scope_created", "user_id", "livemode", "created_at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = user_fk()
    livemode: bool
    name: str = Field(max_length=255)
    description: str = Field(default="", max_length=2000)
    latest_version: int = 1
    archived_at: datetime | None = optional_time_field()
    created_at: datetime = created_field()
    updated_at: datetime = created_field()


class RubricVersion(SQLModel, table=True):
    """One immutable version of an account rubric: the validated document (the JSON form of a rubric
    file, with the server's ``id`` and ``version``)."""

    __tablename__ = "rubric_versions"
    __table_args__ = (UniqueConstraint("rubric_id", "version", name="uq_rubric_versions_rubric_version"),)

    id: uuid.UUID = id_field()
    rubric_id: uuid.UUID = Field(foreign_key="rubrics.id", ondelete="CASCADE", nullable=False)
    version: int
    document: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = created_field()
