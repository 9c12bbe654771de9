"""Bulk send fan-out (default queue)."""

from jobs.context import app_job
from services.messaging import bulk


@app_job
def bulk_dispatch(batch_id: str) -> None:
    bulk.bulk_dispatch(batch_id)
