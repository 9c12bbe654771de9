"""Prometheus on the background roles: the port `flask worker` and `flask engine-host` serve
their metrics on, and what an engine host reports about the sessions it holds.

The web role serves its own at `/metrics` (blueprints/metrics); the embedded default is one
process, so its `/metrics` shows the engine host's too. The series are defined in
services/platform/metrics.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask

from services.governor.backlog import sends_backlog
from services.platform.metrics import collector_unwatch, collector_watch, gauge_family, metrics_serve
from services.platform.store_outage import store_unreachable

log = logging.getLogger(__name__)


def role_metrics_serve(app: Flask, role: str, port: int | None) -> None:
    """Serve the process's metrics for ROLE on PORT (0 or None: not served) at METRICS_ADDRESS."""
    if not port:
        return
    address = app.config["METRICS_ADDRESS"]
    metrics_serve(port, address)
    log.info("%s: metrics at http://%s:%d/metrics", role, address, port)


def engine_host_watch(host) -> None:
    """Report, at each scrape, the sessions the engine host holds and their send backlogs."""
    collector_watch(host, lambda: _engine_host_metrics(host))


def engine_host_unwatch(host) -> None:
    collector_unwatch(host)


def _engine_host_metrics(host) -> Iterable:
    sessions = sorted(host.engine.active_sessions())
    yield gauge_family(
        "wagate_engine_sessions", "Sessions this engine host holds", ["host"], [([host.id], len(sessions))]
    )
    try:
        with host.app.app_context():
            backlogs = sends_backlog(sessions)
    except Exception as exc:  # the other series still answer
        if store_unreachable(exc):
            log.warning("engine host %s: no send queue metrics while a store is out of reach (%s)", host.id, exc)
        else:
            log.exception("engine host %s: could not read its send queues for metrics", host.id)
        return
    yield gauge_family(
        "wagate_send_queue_depth",
        "Messages waiting in a session's send queue (on a lane or held for later)",
        ["session_id"],
        [([backlog.session_id], backlog.depth) for backlog in backlogs],
    )
    yield gauge_family(
        "wagate_send_queue_oldest_age_seconds",
        "How long the oldest message still queued for a session has waited since it was due (0: none)",
        ["session_id"],
        [([backlog.session_id], backlog.oldest_age_seconds) for backlog in backlogs],
    )
