"""Errors of audio ingestion: format, size, URL and download failures (all picklable AppErrors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callcov.errors import AppError, NotFound
from callcov.errors import FileTooLarge as FileTooLarge  # a core error (storage raises it), listed here too


class InvalidFileFormat(AppError):
    """Unreadable or non-audio content; ``details`` names the detected type."""

    status_code = 400
    code = "invalid_file_format"
    default_message = (
        "The file is not a supported audio format (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm)"
    )

    def __init__(
        self,
        message: str | None = None,
        *,
        detected_type: str | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        merged = dict(details or {})
        if detected_type is not None:
            merged.setdefault("detected_type", detected_type)
        super().__init__(message, details=merged, headers=headers)


class EmptyAudio(InvalidFileFormat):
    """The file is empty or its audio has no duration."""

    default_message = "The audio is empty (zero bytes or zero duration)"


class AudioTooLong(AppError):
    """The call is longer than the maximum call duration (``CALLCOV_AUDIO__MAX_DURATION_S``).
    ``duration_seconds`` is what the probe measured (at least that, for audio whose packets carry no
    timestamps: it stops decoding a little past the maximum)."""

    status_code = 400
    code = "audio_too_long"
    default_message = "The call is longer than the maximum call duration"

    def __init__(
        self,
        message: str | None = None,
        *,
        duration_s: float | None = None,
        max_duration_s: float | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        merged = dict(details or {})
        if duration_s is not None and max_duration_s is not None:
            merged.update(duration_seconds=duration_s, max_duration_seconds=max_duration_s)
            message = message or (
                f"The call is {duration_s:g} s long; the maximum call duration is {max_duration_s:g} s"
            )
        super().__init__(message, details=merged, headers=headers)


class InvalidAudioUrl(AppError):
    """An ``audio_url`` that is not http(s), cannot be resolved, or resolves to a refused address
    (also after a redirect)."""

    status_code = 400
    code = "invalid_url"
    default_message = "The URL is not allowed"


class AudioDownloadFailed(AppError):
    """Fetching ``audio_url`` failed: timeout, connection error, HTTP error status, too many redirects."""

    status_code = 400
    code = "audio_download_failed"
    default_message = "The audio could not be downloaded from audio_url"


class AnalysisNotFound(NotFound):
    default_message = "Analysis not found"


class AudioNotAvailable(NotFound):
    """No recording to serve: a bleeped copy was asked for and does not exist (yet), or the original
    was deleted, or the stored object is gone."""

    code = "audio_not_available"
    default_message = "No recording is available for this analysis"


class RangeNotSatisfiable(AppError):
    """A ``Range`` header naming no satisfiable single byte range; ``Content-Range: bytes */size``."""

    status_code = 416
    code = "range_not_satisfiable"
    default_message = "The requested range is not satisfiable"
