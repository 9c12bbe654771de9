"""Prometheus metrics: every `wagate_*` series, what records them, and how a role exposes them.

The series are defined once here and recorded where the thing happens (a send's outcome
written, a webhook attempt made, a request answered); each process exposes its own values:
the web role on its `/metrics` route (blueprints/metrics), the worker and the engine host on
a port of their own (`metrics_serve`). Under gunicorn the web runs in prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py): each worker process
writes its values to files there and `/metrics` adds them up.

Values that are read rather than counted (the engine host's send queues) come from
collectors registered with `collector_watch`, asked at each scrape.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.errors import NotFound, Unauthorized

# The governor's reasons to hold a session's next message back (services/governor/queue.py).
PACE_REASONS = ("gap", "per_minute", "per_day", "warmup", "quiet_hours", "paused")
WEBHOOK_OUTCOMES = ("succeeded", "failed")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: a fast answer from the app up to a send that waits for its engine (SEND_WAIT_SECONDS).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds: a gap of a few seconds up to a night of quiet hours or a day's cap.
PACE_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 24 * 3600.0)
WEBHOOK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# No `_created` sample beside each counter and histogram: Prometheus does not use them.
disable_created_metrics()

SENDS = Counter(
    "wagate_sends",
    "Sends settled, by status (sent, failed) and error code (empty when sent): counted by the engine host as it "
    "writes their outcome, or by the web for a number it knows is not on WhatsApp",
    ["status", "error_code"],
)
PACE_WAITS = Counter(
    "wagate_pace_waits",
    "Times a session's next message was held back by its pace (a wait beginning), by reason",
    ["reason"],
)
PACE_WAIT_SECONDS = Histogram(
    "wagate_pace_wait_seconds",
    "How long each pace wait was to last when it began, by reason",
    ["reason"],
    buckets=PACE_BUCKETS,
)
WEBHOOK_ATTEMPTS = Counter(
    "wagate_webhook_attempts",
    "Webhook delivery attempts, by outcome (succeeded: a 2xx answer; failed: anything else)",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "wagate_webhook_attempt_duration_seconds",
    "How long each webhook attempt took, from its request to the end of the answer read",
    ["outcome"],
    buckets=WEBHOOK_BUCKETS,
)
WEBHOOK_DEAD = Counter(
    "wagate_webhook_dead_letters",
    "Webhook deliveries given up (dead-lettered): out of retries, or their endpoint disabled",
)
ENGINE_RECONNECTS = Counter(
    "wagate_engine_reconnects", "Times a session's WhatsApp connection dropped and its engine began reconnecting"
)
LEASE_MOVES = Counter(
    "wagate_session_lease_moves",
    "Times a session's lease moved to another engine host, by reason",
    ["reason"],
)
HTTP_SECONDS = Histogram(
    "wagate_http_request_duration_seconds",
    "How long the web role took to answer, by method, route (the URL rule, not the path) and status",
    ["method", "route", "status"],
    buckets=HTTP_BUCKETS,
)

# Series that exist from the start, so a scrape shows them (and a rate is 0, not missing).
SENDS.labels("sent", "")
for _reason in PACE_REASONS:
    PACE_WAITS.labels(_reason)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_ATTEMPTS.labels(_outcome)


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, when this process runs in it."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# -- recording ------------------------------------------------------------------------------


def sends_settled(outcomes: Iterable[tuple[str, str | None]]) -> None:
    """Count settled sends: (status, error code) pairs."""
    for status, error_code in outcomes:
        SENDS.labels(status, error_code or "").inc()


class _PaceWaits:
    """Counts a wait when it begins: a send line asks its governor again every second or so
    while it waits, and each answer repeats the same wait until a message goes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: dict[str, str] = {}

    def decided(self, session_id: str, reason: str | None, wait: float | None) -> None:
        with self.lock:
            if reason not in PACE_REASONS:  # a message goes, or there is none
                self.waiting.pop(session_id, None)
                return
            if self.waiting.get(session_id) == reason:
                return
            self.waiting[session_id] = reason
        PACE_WAITS.labels(reason).inc()
        if wait is not None:
            PACE_WAIT_SECONDS.labels(reason).observe(max(wait, 0.0))


_pace_waits = _PaceWaits()


def pace_decided(session_id: str, reason: str | None, wait: float | None) -> None:
    """The governor's answer for a session: a pace reason with its wait, or none (a send, an empty queue)."""
    _pace_waits.decided(session_id, reason, wait)


def webhook_attempted(succeeded: bool, seconds: float) -> None:
    outcome = "succeeded" if succeeded else "failed"
    WEBHOOK_ATTEMPTS.labels(outcome).inc()
    WEBHOOK_SECONDS.labels(outcome).observe(seconds)


def webhook_dead_lettered(count: int = 1) -> None:
    WEBHOOK_DEAD.inc(count)


def engine_reconnecting() -> None:
    ENGINE_RECONNECTS.inc()


def lease_moved(reason: str) -> None:
    """A session's lease went to another engine host (reason: e.g. takeover, rebalance, drain)."""
    LEASE_MOVES.labels(reason).inc()


def http_answered(method: str, route: str, status: int, seconds: float) -> None:
    """Time an answer. A method HTTP does not define is labelled `other`: a client picks it, and
    each new label value would be a new series."""
    HTTP_SECONDS.labels(method if method in HTTP_METHODS else "other", route, str(status)).observe(seconds)


# -- collectors -----------------------------------------------------------------------------


class _Watched(Collector):
    """The read-at-scrape sources of this process (see `collector_watch`), as one collector."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sources: dict[object, Callable[[], Iterable[Metric]]] = {}

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            sources = list(self.sources.values())
        for source in sources:
            yield from source()


_watched = _Watched()
REGISTRY.register(_watched)


def collector_watch(key: object, source: Callable[[], Iterable[Metric]]) -> None:
    """Have every scrape of this process ask `source` for metric families (until unwatched)."""
    with _watched.lock:
        _watched.sources[key] = source


def collector_unwatch(key: object) -> None:
    with _watched.lock:
        _watched.sources.pop(key, None)


def gauge_family(name: str, documentation: str, labels: list[str], samples: Iterable[tuple[list[str], float]]):
    """A gauge read at scrape time, with its labelled samples."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


# -- exposing -------------------------------------------------------------------------------


def metrics_authorize(authorization: str | None, token: str) -> None:
    """Let a scrape through only with `Authorization: Bearer TOKEN`; without a TOKEN set, the
    web serves no metrics (404, as for any unknown page)."""
    if not token:
        raise NotFound("The requested URL was not found on this server")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized(
            "Send the metrics token as Authorization: Bearer <METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


def metrics_exposition() -> tuple[bytes, str]:
    """This process's metrics in Prometheus's text format (and its content type); under
    multiprocess mode, every process's values from the shared directory, added up."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_serve(port: int, address: str):
    """Serve this process's metrics at http://ADDRESS:PORT/metrics from a daemon thread;
    returns the server (its `shutdown()` stops it)."""
    server, _ = start_http_server(port, addr=address)
    return server
