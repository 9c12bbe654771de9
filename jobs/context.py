"""Give every job a fresh Flask app context (and so a fresh database session)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context

_process_app: Flask | None = None
P = ParamSpec("P")
R = TypeVar("R")


def _job_app() -> Flask:
    """The app of the calling worker thread, or (in a bare `rq worker`) one built once."""
    global _process_app
    if has_app_context():
        return current_app._get_current_object()
    if _process_app is None:
        from app import create_app

        _process_app = create_app()
    return _process_app


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
