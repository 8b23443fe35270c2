"""The network kit's own errors; each domain maps them to its API errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class NetworkError(Exception):
    """A URL could not be used; ``message`` is fit to show to the client that gave the URL."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        self.message = message
        self.details = dict(details or {})
        super().__init__(message, self.details)

    def __str__(self) -> str:
        return self.message


class UrlRefused(NetworkError):
    """Malformed, not http(s), with credentials, or resolving to an address that is not allowed
    (also after a redirect). Never worth retrying."""


class HostNotResolved(UrlRefused):
    """Refused because the URL's host did not resolve (now): a URL checked for later use (a webhook's)
    may be worth trying again then; catch it before UrlRefused to tell the two apart."""


class FetchFailed(NetworkError):
    """No connection to any checked address, a redirect without Location, or too many redirects."""
