"""Whether this process runs on gevent's greenlets, and CPU-heavy work kept off their thread.

The web role runs under gunicorn's gevent worker (gunicorn.conf.py), which patches the
standard library before it loads the app; every other process (the engine host, `flask
worker`, the embedded default) runs on threads. In a green process every connection shares
one thread, so work that holds it for long (a password hash) stops every live client.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def process_is_green() -> bool:
    """Whether gevent has patched this process's standard library."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


def off_loop(work: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`work(*args, **kwargs)`, on one of gevent's native threads in a green process, so the
    other greenlets run meanwhile (if `work` lets go of the GIL, as argon2 does); called
    directly anywhere else."""
    if not process_is_green():
        return work(*args, **kwargs)
    import gevent

    return gevent.get_hub().threadpool.apply(work, args, kwargs)
