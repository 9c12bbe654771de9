"""Pruning the event log and the webhook delivery log (default queue)."""

from jobs.context import app_job
from services.platform import retention


@app_job
def retention_prune_periodic() -> None:
    retention.retention_prune_periodic()
