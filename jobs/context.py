"""Give every job a fresh Flask app context (and so a fresh database session)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context

P = ParamSpec("P")
R = TypeVar("R")


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
        with app.app_context():
            return fn(*args, **kwargs)

    return wrapper
