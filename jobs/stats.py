"""Statistics aggregation jobs (default queue)."""

from jobs.context import app_job
from services.messaging import stats


@app_job
def stats_aggregate(user_id: str) -> None:
    stats.stats_aggregate(user_id)


@app_job
def stats_aggregate_all() -> None:
    stats.stats_aggregate_all()
