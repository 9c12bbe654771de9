"""Give every job a fresh Flask app context (and so a fresh database session), and try it
again later when it fails only because PostgreSQL or Redis was out of reach."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from rq import Retry, get_current_job
from rq.scheduler import RQScheduler

from services.platform.store_outage import redis_unreachable, store_unreachable, wait_out

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)

# A job that met a store outage runs again after these pauses (the last one repeating), up
# to STORE_RETRIES times, about an hour and a half in all, before it counts as failed.
STORE_RETRY_SECONDS = [2, 5, 10, 30, 60, 120]
STORE_RETRIES = 50
# How long a job that met a Redis outage waits in place for Redis, so that its retry can
# be recorded at all (within the shortest job timeout's margin).
REDIS_WAIT_SECONDS = 60.0


def _job_app() -> Flask:
    """The app of the process running the job: `flask worker`, the engine host and the embedded
    runtime all run jobs inside theirs (a bare `rq worker` has none, and is not a wagate role)."""
    if not has_app_context():
        raise RuntimeError("wagate jobs run in `flask --app app worker` or an engine host, which give them the app")
    return current_app._get_current_object()


def app_job(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        app = _job_app()
        # A forked work horse must not reuse the parent's pooled database connections.
        if app.extensions.get("wagate.pid") != os.getpid():
            from extensions import db

            with app.app_context():
                db.engine.dispose(close=False)
            app.extensions["wagate.pid"] = os.getpid()
        try:
            with app.app_context():
                return fn(*args, **kwargs)
        except Exception as exc:
            job = get_current_job()
            if job is None or not store_unreachable(exc):
                raise
            return _retry_later(app, job, exc)

    return wrapper


def _retry_later(app: Flask, job, exc: Exception) -> Retry:
    """The job failed only because a store was out of reach: RQ runs it again later (a job
    that answers a Retry is rescheduled, not failed). With Redis down, that answer cannot be
    recorded, so the job first waits (a while) for Redis to answer again."""
    tries = (job.number_of_retries or 0) + 1
    if tries > STORE_RETRIES:
        raise exc
    if redis_unreachable(exc):
        wait_out(
            app.extensions["wagate.redis"].ping, what=f"job {job.id}: Redis", logger=log, within=REDIS_WAIT_SECONDS
        )
    if not _scheduled(job):
        raise exc
    log.warning(
        "job %s (%s): %s unreachable (%s); trying again later (%d of %d)",
        job.id,
        job.func_name,
        "Redis" if redis_unreachable(exc) else "the database",
        type(exc).__name__,
        tries,
        STORE_RETRIES,
    )
    return Retry(max=STORE_RETRIES, interval=STORE_RETRY_SECONDS)


def _scheduled(job) -> bool:
    """Whether a scheduler moves the delayed jobs of the job's queue (holds its lock): a retry
    there would be stranded otherwise. The webhook queue has none: its deliveries are lined
    up again from the database (services/webhooks/delivery.py)."""
    try:
        return bool(job.connection.exists(RQScheduler.get_locking_key(job.origin)))
    except Exception as exc:
        if store_unreachable(exc):
            return False
        raise
