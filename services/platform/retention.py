"""What is kept only for a while: the event log (EVENT_RETENTION_DAYS) and the webhook
delivery log (WEBHOOK_LOG_RETENTION_DAYS), pruned by one self-renewing job in the worker
role every RETENTION_INTERVAL_SECONDS, RETENTION_BATCH rows per transaction. A setting of
0 days keeps that log for good."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from extensions import queues
from models.base import utcnow
from services.events.log import events_prune
from services.webhooks.delivery import webhook_deliveries_prune

log = logging.getLogger(__name__)

PERIODIC_KEY = "wagate:retention:periodic"
PRUNE_JOB = "jobs.retention.retention_prune_periodic"


@dataclass(frozen=True)
class Pruned:
    events: int
    deliveries: int


def retention_schedule_periodic() -> None:
    """Keep one self-renewing pruning running, whatever the number of workers."""
    interval = current_app.config["RETENTION_INTERVAL_SECONDS"]
    if queues.connection.set(PERIODIC_KEY, 1, nx=True, ex=int(interval * 2)):
        queues.queue().enqueue_in(timedelta(seconds=interval), PRUNE_JOB, result_ttl=60)


def retention_prune(now: datetime | None = None) -> Pruned:
    """Delete the events and the settled webhook deliveries (with their attempts) older than
    their retention; how many of each went."""
    now = now or utcnow()
    config = current_app.config
    batch = config["RETENTION_BATCH"]
    events = deliveries = 0
    if config["EVENT_RETENTION_DAYS"] > 0:
        events = events_prune(now - timedelta(days=config["EVENT_RETENTION_DAYS"]), batch=batch)
    if config["WEBHOOK_LOG_RETENTION_DAYS"] > 0:
        deliveries = webhook_deliveries_prune(now - timedelta(days=config["WEBHOOK_LOG_RETENTION_DAYS"]), batch=batch)
    if events or deliveries:
        log.info("retention: %d event(s) and %d webhook deliveries pruned", events, deliveries)
    return Pruned(events, deliveries)


def retention_prune_periodic() -> None:
    """The periodic job: prune, then schedule the next run (even after a failure)."""
    try:
        retention_prune()
    finally:
        queues.connection.delete(PERIODIC_KEY)
        retention_schedule_periodic()
