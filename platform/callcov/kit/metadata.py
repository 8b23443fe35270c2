"""The metadata rules every resource shares: at most 50 keys, keys <= 40 chars, string values <= 500,
and none of the keys the resource adds to its own ``metadata`` (``reserved``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from callcov.errors import AppError

MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500


class InvalidMetadata(AppError):
    status_code = 400
    code = "validation_error"


def validate_metadata(metadata: Any, reserved: Collection[str] = ()) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidMetadata("metadata must be an object of string keys and string values")
    if len(metadata) > MAX_KEYS:
        raise InvalidMetadata(
            f"metadata may have at most {MAX_KEYS} keys ({len(metadata)} given)",
            details={"max_keys": MAX_KEYS},
        )
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidMetadata(
                f"metadata keys must be 1 to {MAX_KEY_LENGTH} characters", details={"key": str(key)[:60]}
            )
        if key in reserved:
            raise InvalidMetadata(
                f"metadata key '{key}' is reserved: CallCov sets it (reserved: {', '.join(reserved)})",
                details={"key": key},
            )
        if not isinstance(value, str):
            raise InvalidMetadata(f"metadata value for '{key}' must be a string", details={"key": key})
        if "\x00" in key or "\x00" in value:
            raise InvalidMetadata(
                "metadata may not contain NUL characters", details={"key": key.replace("\x00", "")}
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidMetadata(
                f"metadata value for '{key}' exceeds {MAX_VALUE_LENGTH} characters", details={"key": key}
            )
    return dict(metadata)
