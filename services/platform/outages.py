"""Outages of what the service stands on, recognised in one place: the database and Redis.

An outage is not a bug: the request was fine and the same request a few seconds later will
most likely succeed. Routes answer it `503` with `Retry-After` in their dialect's shape
(blueprints/errors/handlers.py); work that runs after a commit (handing messages to the
engine host, headers, events) catches it, logs it, and leaves the rest to the relay
(services/messaging/relay.py), because the database, not Redis, is the record.

What counts:
- Redis unreachable, timing out, loading its data after a restart, read-only after a
  failover, a cluster that is down or asks to try again (redis-py's errors, which RQ and
  Flask-Limiter's storage raise too);
- the database unreachable or gone away (SQLAlchemy's OperationalError, InterfaceError, a
  connection it had to invalidate), its pool out of connections (sqlalchemy.exc.TimeoutError),
  a statement cancelled by `statement_timeout`; with SQLite, a database locked beyond
  its busy timeout (its other OperationalErrors, "no such table" and the like, are bugs);
- any error raised while handling one of those (a session left needing a rollback).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from flask import current_app
from redis import exceptions as redis_errors
from sqlalchemy import exc as sql_errors

from extensions import db
from services.errors import ServiceUnavailable

REDIS_OUTAGES: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # also BusyLoadingError, MaxConnectionsError
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.ClusterDownError,  # also MasterDownError
    redis_errors.TryAgainError,
)
DATABASE_OUTAGES: tuple[type[Exception], ...] = (
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    sql_errors.TimeoutError,
)
# What SQLite says when it is busy, as opposed to a statement that is wrong.
SQLITE_BUSY = ("database is locked", "database table is locked", "disk i/o error", "unable to open database")


def outage_kind(exc: BaseException) -> str | None:
    """The outage `exc` (or an error it was raised from) is: "database", "queue", or None for none."""
    for error in _chain(exc):
        if isinstance(error, REDIS_OUTAGES):
            return "queue"
        if isinstance(error, DATABASE_OUTAGES) and not _sqlite_bug(error):
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
