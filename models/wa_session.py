"""WhatsApp sessions: one linked phone each."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import isoformat, new_id, utcnow


class SessionStatus(StrEnum):
    """The status values of the WAMessenger contract, exactly."""

    CONNECTING = "connecting"
    PENDING = "pending"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"
    ERROR = "error"


class WaSession(db.Model):
    __tablename__ = "wa_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.CONNECTING)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(32))
    # True while the engine holds a linked device for this session (survives restarts).
    paired: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether the owner wants it online; the engine host restores these on start.
    wanted_online: Mapped[bool] = mapped_column(Boolean, default=True)
    # The engine host that owns the session, until `lease_until`, under `lease_generation`: a
    # number that grows with every new holder and fences off a holder that lost the lease.
    engine_host: Mapped[str | None] = mapped_column(String(128), index=True)
    lease_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    qr_code: Mapped[str | None] = mapped_column(Text)
    qr_payload: Mapped[str | None] = mapped_column(String(512))
    qr_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The earliest time the next paced (bulk) message of this session may go.
    next_send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    messages_sent: Mapped[int] = mapped_column(Integer, default=0)
    messages_received: Mapped[int] = mapped_column(Integer, default=0)
    connected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The send governor (services/governor/queue.py): the owner's pace settings (only those changed
    # from the defaults), when the phone was first linked (warm-up counts days from it), and
    # why sending is paused (None while it is not).
    pace: Mapped[dict | None] = mapped_column(JSON)
    paired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_reason: Mapped[str | None] = mapped_column(String(500))
    # How often the engine host found the session deaf (connected, but hearing nothing) and
    # reconnected it, and since when it is deaf (None while it is not): roles/session_watch.py.
    deaf_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    deaf_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    user: Mapped["User"] = relationship()  # noqa: F821

    @property
    def has_qr(self) -> bool:
        return bool(self.qr_code) and self.status == SessionStatus.PENDING

    def to_dict(self) -> dict:
        return {
            "sessionId": self.id,
            "name": self.name,
            "description": self.description,
            "phone": self.phone,
            "status": self.status,
            "hasQR": self.has_qr,
            "messagesSent": self.messages_sent,
            "messagesReceived": self.messages_received,
            "createdAt": isoformat(self.created_at),
        }

    def to_detail_dict(self) -> dict:
        return {
            **self.to_dict(),
            "statusReason": self.status_reason,
            "connectedAt": isoformat(self.connected_at),
            "updatedAt": isoformat(self.updated_at),
            "host": self.engine_host,
            "deafCount": self.deaf_count,
            "deafSince": isoformat(self.deaf_at),
        }

    def to_status_dict(self) -> dict:
        return {
            "sessionId": self.id,
            "status": self.status,
            "phone": self.phone,
            "hasQR": self.has_qr,
            "reason": self.status_reason,
        }
