"""Bulk sends: one message to many recipients, paced per session."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import isoformat, new_id, utcnow


class BulkBatch(db.Model):
    __tablename__ = "bulk_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    delay_ms: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    # Contacts that were never sent: invalid or repeated numbers, with their list position.
    rejected: Mapped[list[dict]] = mapped_column(JSON, default=list)
    # Kept up to date as each message settles, so progress never recounts the whole batch.
    sent_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # scheduled (waits for send_at), running, finished or cancelled (a scheduled one called off).
    status: Mapped[str] = mapped_column(String(16), default="running")
    send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # A test key's batch is a stand-in that is never stored: it carries its simulated messages.
    simulated = False
    simulated_messages = ()
    # False on a batch just stored whose dispatching Redis could not take at once: the relay
    # starts it later, so its request does not wait for it (services/messaging/bulk.py).
    handed_off = True

    def summary(self) -> dict:
        return {
            "batchId": self.id,
            "sessionId": self.session_id,
            "status": self.status,
            "delay": self.delay_ms,
            "createdAt": isoformat(self.created_at),
            "finishedAt": isoformat(self.finished_at),
            **({"sendAt": isoformat(self.send_at)} if self.send_at else {}),
        }
