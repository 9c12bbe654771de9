"""Outages of the database and Redis as a request meets them: answered, not failed.

An outage is not a bug: the request was fine and the same request a few seconds later will
most likely succeed. Routes answer it `503` with `Retry-After` in their dialect's shape
(blueprints/errors/handlers.py); work that runs after a commit (handing messages to the
engine host, headers, events) catches it, logs it, and leaves the rest to the relay
(services/messaging/relay.py), because the database, not Redis, is the record.

What counts is what the background roles wait out (services/platform/store_outage.py):
Redis unreachable, timing out, loading its data after a restart or read-only after a
failover; the database unreachable or gone away, a connection SQLAlchemy had to invalidate,
its pool out of connections, a statement cancelled by `statement_timeout`; and any error
raised while handling one of those. With SQLite, only a database locked beyond its busy
timeout (or a file that cannot be opened) is one: its other OperationalErrors, "no such
table" and the like, are bugs, answered 500.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import exc as sql_errors

from extensions import db
from services.errors import ServiceUnavailable
from services.platform.store_outage import DATABASE_DOWN, REDIS_DOWN

# What SQLite says when it is busy, as opposed to a statement that is wrong.
SQLITE_BUSY = ("database is locked", "database table is locked", "disk i/o error", "unable to open database")


def outage_kind(exc: BaseException) -> str | None:
    """The outage `exc` (or an error it was raised from) is: "database", "queue", or None for none."""
    for error in _chain(exc):
        if isinstance(error, REDIS_DOWN):
            return "queue"
        if isinstance(error, DATABASE_DOWN) and not _sqlite_bug(error):
            return "database"
        if isinstance(error, sql_errors.DBAPIError) and error.connection_invalidated:
            return "database"
    return None


def is_outage(exc: BaseException) -> bool:
    return outage_kind(exc) is not None


def outage_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 (with Retry-After) an outage is answered with, None when `exc` is no outage."""
    kind = outage_kind(exc)
    if kind is None:
        return None
    seconds = str(current_app.config["OUTAGE_RETRY_AFTER_SECONDS"])
    if kind == "database":
        return ServiceUnavailable(
            f"The database is unreachable; try again in {seconds} s",
            code="DATABASE_UNAVAILABLE",
            headers={"Retry-After": seconds},
        )
    return ServiceUnavailable(
        f"The job queue is unreachable; try again in {seconds} s",
        code="QUEUE_UNAVAILABLE",
        headers={"Retry-After": seconds},
    )


def outage_rollback() -> None:
    """End the session's transaction after an outage. A rollback on a connection that died
    fails (SQLAlchemy drops the connection) and leaves the session usable, so it is tried
    twice; the objects the session held are expired either way."""
    for attempt in range(2):
        try:
            db.session.rollback()
            return
        except Exception as exc:
            if attempt or not is_outage(exc):
                raise


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or while handling, each once."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _sqlite_bug(error: Exception) -> bool:
    """An SQLite OperationalError that is a wrong statement or schema, not a busy database."""
    original = getattr(error, "orig", None)
    return isinstance(original, sqlite3.OperationalError) and not any(
        words in str(original).lower() for words in SQLITE_BUSY
    )
