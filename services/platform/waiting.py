"""Waiting in a request for work another process does (the engine host, a worker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from extensions import db

T = TypeVar("T")


def wait_until(read: Callable[[], T], done: Callable[[T], bool], seconds: float, interval: float = 0.05) -> T:
    """Re-read until `done(value)` or the deadline; returns the last value read."""
    deadline = time.monotonic() + seconds
    while True:
        db.session.rollback()  # end the read transaction so the next read sees new commits
        value = read()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
