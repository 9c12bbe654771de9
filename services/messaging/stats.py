"""Daily counters per user and session, aggregated by an RQ job, and the stats the API shows."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from extensions import db, queues
from models import DailyStat, Message, User
from models.base import as_utc
from models.message import INBOUND
from services.events.catalog import DomainEvent

COUNTERS = ("sent", "delivered", "read", "failed", "received")
CHART_DAYS = 7
PENDING_KEY = "wagate:stats:pending:{}"
PERIODIC_KEY = "wagate:stats:periodic"
AGGREGATE_JOB = "jobs.stats.stats_aggregate"


def today() -> date:
    return datetime.now(UTC).date()


def stats_refresh_soon(user_id: str) -> None:
    """Aggregate this user's counters shortly; many changes in a burst make one job."""
    delay = current_app.config["STATS_DEBOUNCE_SECONDS"]
    if queues.connection.set(PENDING_KEY.format(user_id), 1, nx=True, ex=max(1, int(delay) + 1)):
        queues.queue().enqueue_in(timedelta(seconds=delay), AGGREGATE_JOB, user_id, result_ttl=60)


def stats_on_events(user_id: str, events: list[DomainEvent]) -> None:
    """A subscriber: messages came in or changed status, so their owner's counters change;
    one refresh is asked for all of them."""
    stats_refresh_soon(user_id)


def stats_schedule_periodic() -> None:
    """Keep one self-renewing aggregation of every account running, whatever the number of workers."""
    interval = current_app.config["STATS_INTERVAL_SECONDS"]
    if queues.connection.set(PERIODIC_KEY, 1, nx=True, ex=int(interval * 2)):
        queues.queue().enqueue_in(timedelta(seconds=interval), "jobs.stats.stats_aggregate_all", result_ttl=60)


def stats_aggregate(user_id: str, days: int = CHART_DAYS + 1) -> None:
    """Recount the last `days` days of one user's messages into daily_stats."""
    queues.connection.delete(PENDING_KEY.format(user_id))
    first_day = today() - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    counts: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    rows = db.session.execute(
        select(
            Message.session_id,
            Message.direction,
            Message.created_at,
            Message.sent_at,
            Message.delivered_at,
            Message.read_at,
            Message.failed_at,
        ).where(Message.user_id == user_id, Message.updated_at >= since)
    )
    for session_id, direction, created_at, *stamps in rows:
        if direction == INBOUND:
            stamps_by_counter = {"received": created_at}
        else:
            stamps_by_counter = dict(zip(("sent", "delivered", "read", "failed"), stamps, strict=True))
        for counter, stamp in stamps_by_counter.items():
            stamp = as_utc(stamp)
            if stamp is not None and stamp >= since:
                counts[(session_id, stamp.date())][counter] += 1
    db.session.execute(delete(DailyStat).where(DailyStat.user_id == user_id, DailyStat.day >= first_day))
    for (session_id, day), values in counts.items():
        db.session.add(DailyStat(user_id=user_id, session_id=session_id, day=day, **values))
    db.session.commit()


def stats_aggregate_all() -> None:
    for user_id in db.session.scalars(select(User.id)).all():
        stats_aggregate(user_id)
    queues.connection.delete(PERIODIC_KEY)
    stats_schedule_periodic()


def stats_get(user: User) -> dict:
    """Totals and the 7-day chart, in the WAMessenger shape (days without traffic are zeros)."""
    totals = db.session.execute(
        select(*(func.coalesce(func.sum(getattr(DailyStat, c)), 0) for c in COUNTERS)).where(
            DailyStat.user_id == user.id
        )
    ).one()
    totals = dict(zip(COUNTERS, (int(v) for v in totals), strict=True))
    days = [today() - timedelta(days=offset) for offset in range(CHART_DAYS - 1, -1, -1)]
    per_day = {
        row.day: row
        for row in db.session.execute(
            select(DailyStat.day, *(func.sum(getattr(DailyStat, c)).label(c) for c in COUNTERS))
            .where(DailyStat.user_id == user.id, DailyStat.day >= days[0])
            .group_by(DailyStat.day)
        )
    }
    chart: dict[str, list] = {"labels": [f"{day:%a}, {day:%b} {day.day}" for day in days]}
    for counter in ("sent", "delivered", "read", "failed"):
        chart[counter] = [int(getattr(per_day[day], counter)) if day in per_day else 0 for day in days]
    return {
        "success": True,
        "totals": {
            "sent": totals["sent"],
            "delivered": totals["delivered"],
            "read": totals["read"],
            "failed": totals["failed"],
            "total": totals["sent"] + totals["failed"],
            "received": totals["received"],
        },
        "chart": chart,
    }
