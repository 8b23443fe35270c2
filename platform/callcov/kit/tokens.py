"""Secret tokens: API keys with a checksum, keyed hashes, one-time email tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

BASE62 = string.digits + string.ascii_letters
API_KEY_RANDOM_LENGTH = 42
CHECKSUM_LENGTH = 6
KEY_PREFIX_LENGTH = 14


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(BASE62[rest])
    return "".join(reversed(chars))


def generate_api_key(mode: str) -> str:
    """``sk_<mode>_`` + 42 random base62 chars + a 6-char CRC32 checksum (48 chars after the prefix)."""
    body = "".join(secrets.choice(BASE62) for _ in range(API_KEY_RANDOM_LENGTH))
    return f"sk_{mode}_{body}{_base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)}"


def api_key_checksum_ok(key: str) -> bool:
    """Cheap offline check that a string is a well-formed CallCov key (no database needed)."""
    for prefix in ("sk_live_", "sk_test_"):
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            body, checksum = rest[:-CHECKSUM_LENGTH], rest[-CHECKSUM_LENGTH:]
            return (
                len(rest) == API_KEY_RANDOM_LENGTH + CHECKSUM_LENGTH
                and _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH) == checksum
            )
    return False


def keyed_hash(value: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), value.encode(), hashlib.sha256).hexdigest()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def generate_url_token() -> str:
    return secrets.token_urlsafe(32)


def generate_request_id() -> str:
    return "req_" + "".join(secrets.choice(BASE62) for _ in range(16))
