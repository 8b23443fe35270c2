"""Rubric references: ``default``, ``default@2``, ``rub_<32 hex>``, ``rub_<32 hex>@3``."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

PREFIX = "rub_"
REF_PATTERN = r"^[a-z0-9_\-]{1,64}(@[0-9]{1,6})?$"
_REF = re.compile(REF_PATTERN)
_ACCOUNT = re.compile(r"^rub_([0-9a-f]{32})$")


@dataclass(frozen=True)
class RubricRef:
    id: str
    version: int | None = None

    @property
    def account_uuid(self) -> uuid.UUID | None:
        """The row id of an account rubric; None for a built-in id."""
        m = _ACCOUNT.match(self.id)
        return uuid.UUID(m.group(1)) if m else None

    @property
    def is_account(self) -> bool:
        return self.id.startswith(PREFIX)


def parse_ref(value: str) -> RubricRef | None:
    """The reference, or None when ``value`` is not one."""
    if not isinstance(value, str) or not _REF.match(value):
        return None
    name, _, version = value.partition("@")
    return RubricRef(name, int(version) if version else None)


def public_id(row_id: uuid.UUID) -> str:
    return PREFIX + row_id.hex
