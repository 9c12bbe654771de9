"""Telling a store outage from a bug, and waiting one out.

The background roles (engine host, worker) keep running while PostgreSQL or Redis restarts:
an error that only says the database or Redis cannot be reached right now is worth waiting
out with a growing pause and trying again, where any other error is a bug to report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import redis.exceptions
import sqlalchemy.exc

# Redis refused, dropped or timed out the connection (BusyLoadingError, a server still
# loading its data after a restart, is a ConnectionError), or it is a replica during a failover.
# Behind Sentinels (REDIS_SENTINELS), no primary to name during a failover is a ConnectionError
# too (MasterNotFoundError), and so is a primary that became a replica (redis-py turns its
# ReadOnlyError into one and asks the Sentinels again on the next connection).
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)
# The database refused or dropped the connection, or the pool had none to give in time.
DATABASE_DOWN = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError)

# The pauses between tries: from the first, doubling up to the last, so a store that comes
# back is found within seconds and one that stays down costs a connection attempt now and then.
FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 5.0


def redis_unreachable(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, says Redis is out of reach."""
    return any(isinstance(error, REDIS_DOWN) for error in _chain(exc))


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, says the database is out of reach."""
    return any(
        isinstance(error, DATABASE_DOWN)
        or (isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated)
        for error in _chain(exc)
    )


def store_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL or Redis is out of reach (worth waiting out), not a bug."""
    return redis_unreachable(exc) or database_unreachable(exc)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


class StoreOutage:
    """One loop's view of an outage: how long to wait before the next try, and a log line
    when it starts and when it ends (not one per try)."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.log = logger
        self.since: float | None = None
        self._wait = FIRST_WAIT_SECONDS
        self._lock = threading.Lock()

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> float:
        """A try failed because a store is out of reach: the seconds to wait before the next."""
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()
                self._wait = FIRST_WAIT_SECONDS
                self.log.warning("%s: %s (%s); trying again with backoff", self.what, _reason(exc), type(exc).__name__)
            wait = self._wait
            self._wait = min(LONGEST_WAIT_SECONDS, self._wait * 2)
            return wait

    def recovered(self) -> None:
        """A try succeeded: the next failure starts a new outage."""
        if self.since is None:
            return
        with self._lock:
            if self.since is not None:
                self.log.info("%s: the store answers again after %.1f s", self.what, time.monotonic() - self.since)
                self.since = None


def wait_out(
    action: Callable[[], object],
    *,
    what: str,
    logger: logging.Logger,
    within: float | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> bool:
    """Run `action` until it succeeds (True), waiting with backoff while a store is out of
    reach; other errors are raised. False if it has not succeeded `within` seconds, or when
    `stopping()` turns true."""
    outage = StoreOutage(what, logger)
    deadline = None if within is None else time.monotonic() + within
    while True:
        try:
            action()
        except Exception as exc:
            if not store_unreachable(exc):
                raise
            wait = outage.failed(exc)
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            if stopping() or wait <= 0:
                return False
            time.sleep(wait)
            continue
        outage.recovered()
        return True


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "unreachable"
