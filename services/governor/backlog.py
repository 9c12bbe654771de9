"""What waits to be sent, per session: how many messages, and how long the oldest has waited.

For the engine host's metrics (roles/metrics.py): the depth is the session's send queue in
Redis (queued on a lane or held for later, as `SendQueue.depth` counts it); the age comes
from the database, the record, where every message still `queued` is waiting whatever Redis
holds: the oldest one's age from when it was due (its `send_after`, else when it was made).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from extensions import db, queues
from models import Message, MessageStatus
from models.base import as_utc
from models.message import OUTBOUND
from services.governor.queue import send_queue_depths


@dataclass(frozen=True)
class Backlog:
    session_id: str
    depth: int
    oldest_age_seconds: float  # 0 when nothing is waiting


def sends_backlog(session_ids: list[str], now: datetime | None = None) -> list[Backlog]:
    """The backlog of each of these sessions, in two reads (Redis, then the database)."""
    if not session_ids:
        return []
    depths = send_queue_depths(queues.connection, session_ids)
    due = func.min(func.coalesce(Message.send_after, Message.created_at))
    oldest = dict(
        db.session.execute(
            select(Message.session_id, due)
            .where(
                Message.session_id.in_(session_ids),
                Message.status == MessageStatus.QUEUED,
                Message.direction == OUTBOUND,
            )
            .group_by(Message.session_id)
        ).all()
    )
    db.session.rollback()  # a scrape holds no transaction open
    now = now or datetime.now(UTC)
    return [
        Backlog(
            session_id,
            depths[session_id],
            max(0.0, (now - as_utc(oldest[session_id])).total_seconds()) if oldest.get(session_id) else 0.0,
        )
        for session_id in session_ids
    ]
