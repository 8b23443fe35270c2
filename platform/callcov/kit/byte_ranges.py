"""HTTP byte ranges (RFC 9110 §14): the one range of a ``Range: bytes=…`` header, so that a browser's
audio player can seek in a file CallCov serves."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class UnsatisfiableRange(ValueError):
    """A ``Range`` header that names no satisfiable single byte range of the file."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte positions that ``header`` asks of a file of ``size``
    bytes; None without a header or for another unit (the whole file is sent).

    ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` (the last n bytes) are answered; ``last`` is
    clipped to the file. Malformed ranges, several ranges, ``a > b``, a first position at or past the
    end of the file and ``bytes=-0`` raise ``UnsatisfiableRange``."""
    if header is None or not header.strip():
        return None
    if not header.strip().lower().startswith("bytes"):
        return None  # a range unit we do not know: ignored, as RFC 9110 allows
    match = _RANGE.match(header)
    if match is None:
        raise UnsatisfiableRange("one range of the form bytes=first-last, bytes=first- or bytes=-suffix")
    first, last = match.group(1), match.group(2)
    if not first and not last:
        raise UnsatisfiableRange("the range names no position")
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRange("an empty suffix range")
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start > end or start >= size:
        raise UnsatisfiableRange(f"the range starts past the end of the file ({size} bytes)")
    return start, min(end, size - 1)
