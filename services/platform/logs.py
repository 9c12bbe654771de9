"""The process's log lines: readable text, or one JSON object per line (LOG_FORMAT=json).

Every module logs through the standard library (`logging.getLogger(__name__)`); this only
decides how records are written. In JSON each line has `time` (UTC, ISO 8601), `level`,
`logger` and `message`, the `exception` when there is one, and what the code in progress has
bound with `log_context` (contextvars): the web binds `request_id` for each request and the
`session_id` its URL names, an engine host's send line and event thread the session they
work on. structlog renders the records (its ProcessorFormatter reads standard records and
merges the bound context).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every JSON line starts with, in this order; the bound context and `exception` follow.
LEADING_KEYS = ("time", "level", "logger", "message")


def _leading_keys_first(logger, method_name: str, event_dict: dict) -> dict:
    """Put the keys every line has first, so lines read alike."""
    leading = {key: event_dict.pop(key) for key in LEADING_KEYS if key in event_dict}
    return leading | event_dict


def json_formatter() -> logging.Formatter:
    """One JSON object per record, with the bound context."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _leading_keys_first,
            structlog.processors.JSONRenderer(),
        ],
    )


def logs_configure(level: str, format_: str) -> None:
    """Send the root logger's records to stderr in FORMAT (text or json) at LEVEL, unless
    something configured logging first (as `logging.basicConfig` does)."""
    if format_ not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {format_!r}")
    if format_ == "text":
        logging.basicConfig(level=level, format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter())
    logging.basicConfig(level=level, handlers=[handler])


def log_context_start(**values: object) -> None:
    """Start a fresh log context (a request, a thread's work) holding VALUES."""
    structlog.contextvars.clear_contextvars()
    log_context_bind(**values)


def log_context_bind(**values: object) -> None:
    """Add VALUES (None ones left out) to what this context's log lines carry."""
    structlog.contextvars.bind_contextvars(**{key: value for key, value in values.items() if value is not None})


def log_context_clear() -> None:
    structlog.contextvars.clear_contextvars()


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Log lines written inside carry VALUES (what was bound before comes back after)."""
    with structlog.contextvars.bound_contextvars(**{key: value for key, value in values.items() if value is not None}):
        yield
