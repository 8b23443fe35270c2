"""Encryption at rest for secrets the service must read back (webhook signing secrets, stored
idempotent responses): Fernet (AES-128-CBC + HMAC-SHA256) under ``CALLCOV_WEBHOOKS__ENCRYPTION_KEYS``.

The first key encrypts and every key decrypts, so a key is replaced by putting the new one first.
Any string works as a key setting: it is stretched to Fernet's 32 bytes by SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class Unreadable(Exception):
    """The data was sealed under a key that is no longer configured, or was altered."""


@lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) for key in keys]
    )


def seal(keys: Sequence[str], data: bytes) -> bytes:
    return _cipher(tuple(keys)).encrypt(data)


def unseal(keys: Sequence[str], token: bytes) -> bytes:
    try:
        return _cipher(tuple(keys)).decrypt(token)
    except InvalidToken as exc:
        raise Unreadable() from exc
