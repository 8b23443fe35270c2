from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from callcov.models.base import created_field, id_field, optional_time_field


class IdempotencyKey(SQLModel, table=True):
    """A client's ``Idempotency-Key`` with the first response, scoped to account and mode, kept 24 h.
    The response is replayed only to ``credential`` (``api_key:<id>`` or ``jwt:<user id>``), and its
    body is stored sealed (``callcov.kit.sealing``): it may carry a secret (a new API key)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "livemode", "key", name="uq_idempotency_scope_key"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", nullable=False)
    livemode: bool
    key: str = Field(max_length=255)
    credential: str = Field(max_length=64)
    fingerprint: str = Field(max_length=64)
    # "in_flight" while the first request runs, then "done" with the stored response.
    status: str = Field(max_length=16)
    response_status: int | None = None
    response_headers: str | None = None
    response_body: bytes | None = Field(default=None, sa_type=LargeBinary)
    locked_at: datetime = created_field()
    created_at: datetime = created_field()
    expires_at: datetime = created_field()
    completed_at: datetime | None = optional_time_field()
