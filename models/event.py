"""The event log: every event a user's sessions published, in order, kept for a while to be replayed."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import utcnow

# A 64-bit id in PostgreSQL; SQLite makes only an INTEGER PRIMARY KEY an autoincrementing rowid.
EventId = BigInteger().with_variant(Integer, "sqlite")


class Event(db.Model):
    """One published event. Its id is its cursor: ids grow in the order a user's events were
    written (services/events/log.py), so "after this id" is exactly what came later."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_user_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Not a foreign key: the log keeps a deleted session's events until they expire.
    session_id: Mapped[str | None] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(32))  # the event's name (message_status, qr, ...)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # as Socket.IO clients receive it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
