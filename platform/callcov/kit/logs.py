"""Logging of the ``callcov`` loggers: plain text (local default) or one JSON object per line
(``CALLCOV_LOG_FORMAT=json``) that carries the request id (``callcov.kit.request_id.current_request_id``,
set by the request-id middleware) and the analysis id of the job being handled (set by the runner from
the job's payload, ``job_log_context``)."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from callcov.kit.request_id import current_request_id

current_analysis_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "callcov_analysis_id", default=None
)
current_job: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "callcov_job", default=None
)

LOGGER = "callcov"
# The attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


@contextmanager
def job_log_context(payload: Mapping[str, Any], *, kind: str = "", job_id: str = "") -> Iterator[None]:
    """Within the block, records carry the payload's ``analysis_id`` (if any) and the job."""
    analysis_id = payload.get("analysis_id")
    analysis_token = current_analysis_id.set(str(analysis_id) if analysis_id else None)
    job_token = current_job.set((kind, job_id) if kind else None)
    try:
        yield
    finally:
        current_job.reset(job_token)
        current_analysis_id.reset(analysis_token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the request and analysis ids in
    context, the job being handled, any ``extra`` fields, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = {
            "request_id": current_request_id.get(),
            "analysis_id": current_analysis_id.get(),
        }
        job = current_job.get()
        if job is not None:
            context["job_kind"], context["job_id"] = job
        entry.update({key: value for key, value in context.items() if value})
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, log_format: str) -> None:
    """Set up the ``callcov`` loggers (again only to change the format): ``text`` through the root
    logger as before, ``json`` on a handler of their own (stderr) that does not propagate, so each
    record is written once."""
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _JsonHandler)]:
        logger.removeHandler(handler)
    if log_format == "json":
        logger.addHandler(_JsonHandler())
        logger.setLevel(level)
        logger.propagate = False
    else:
        logger.propagate = True
        logging.basicConfig(level=level)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
