"""Messages, outgoing and inbound, with their delivery lifecycle."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import isoformat, new_id, utcnow


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    RECEIVED = "received"  # inbound
    SCHEDULED = "scheduled"  # waits for its `send_after` (sendAt); then queued
    CANCELLED = "cancelled"  # a scheduled message the owner called off: never sent


# How far along the delivery lifecycle each status is; receipts never move a message back.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
    MessageStatus.PLAYED: 4,
}
OUTBOUND = "outbound"
INBOUND = "inbound"
# Failures that sending the same message again cannot mend: the number is not on WhatsApp,
# or WhatsApp refuses the message itself.
RETRY_CANNOT_HELP = frozenset({"NUMBER_NOT_ON_WHATSAPP", "REJECTED"})


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_messages_user_idempotency_key"),
        Index("ix_messages_session_wa_id", "session_id", "wa_id"),
        Index("ix_messages_user_status_created", "user_id", "status", "created_at"),
        Index("ix_messages_batch_position", "batch_id", "position"),
        Index("ix_messages_status_send_after", "status", "send_after"),
        Index("ix_messages_user_quota_period", "user_id", "quota_period"),
        Index("ix_messages_dispatched_at", "dispatched_at"),  # the relay's cursor
        Index("ix_messages_status_updated_at", "status", "updated_at"),  # the delivery watchdog's
        Index("ix_messages_session_chat", "session_id", "chat"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(ForeignKey("wa_sessions.id", ondelete="CASCADE"))
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("bulk_batches.id", ondelete="CASCADE"))
    position: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(8), default=OUTBOUND)
    phone: Mapped[str] = mapped_column(String(32))
    # The chat an inbound message came in when it is not `phone`'s own (a group's id).
    chat: Mapped[str | None] = mapped_column(String(64))
    # Fetched from the phone's history (a backfill), not received live.
    history: Mapped[bool] = mapped_column(default=False, server_default=false())
    body: Mapped[str] = mapped_column(Text)
    # text, image, video, audio, ptt, document, sticker, location, contact, poll, reaction.
    type: Mapped[str] = mapped_column(String(16), default="text", server_default="text")
    # The kind's details beyond `body` (engines.outgoing.Outgoing.to_record, plus the stored
    # media file's name, size and SHA-256); None for plain text.
    payload: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(String(500))
    error_code: Mapped[str | None] = mapped_column(String(64))
    # The WhatsApp message id. Outgoing ids are chosen before sending, so a retried send
    # reuses it and WhatsApp (and the simulator) treat it as the same message.
    wa_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The quota period ("2026-11-23", or "trial") whose slot this message holds; cleared
    # when a transient failure refunds it, so a slot is refunded at most once.
    quota_period: Mapped[str | None] = mapped_column(String(16))
    # Handed to the engine host; it sends at `send_after` at the earliest, and at least
    # `min_gap_ms` after the session's previous send (a bulk batch's delay).
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    send_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    min_gap_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    played_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # When the delivery watchdog found it stuck (services/messaging/watchdog.py), and why
    # (STALL_REASONS): set once, kept once it moves on.
    stalled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stall_reason: Mapped[str | None] = mapped_column(String(64))

    session: Mapped["WaSession"] = relationship()  # noqa: F821

    # True only on the stand-in a test key's send answers with; such a message is never stored.
    simulated = False
    # False on a message just stored that Redis could not take at once: the relay hands it
    # over later, so its request does not wait for an outcome (services/messaging/sending.py).
    handed_off = True

    @property
    def stalled(self) -> bool:
        """Found stuck by the delivery watchdog and not moved on since."""
        return self.stalled_at is not None and self.status in (MessageStatus.QUEUED, MessageStatus.SENT)

    @property
    def retry_can_help(self) -> bool:
        """A failed outgoing message whose failure another attempt may get past."""
        return (
            self.direction == OUTBOUND
            and self.status == MessageStatus.FAILED
            and self.error_code not in RETRY_CANNOT_HELP
        )

    def to_dict(self) -> dict:
        return {
            "messageId": self.id,
            "sessionId": self.session_id,
            "batchId": self.batch_id,
            "direction": self.direction,
            "to" if self.direction == OUTBOUND else "from": self.phone,
            "message": self.body,
            "type": self.type,
            **({"content": self.payload_public()} if self.payload else {}),
            **({"mediaUrl": f"/api/messages/{self.id}/media"} if (self.payload or {}).get("media_file") else {}),
            "status": self.status,
            "error": self.error,
            "errorCode": self.error_code,
            "waMessageId": self.wa_id,
            "createdAt": isoformat(self.created_at),
            "sentAt": isoformat(self.sent_at),
            "deliveredAt": isoformat(self.delivered_at),
            "readAt": isoformat(self.read_at),
            "playedAt": isoformat(self.played_at),
            "failedAt": isoformat(self.failed_at),
            **(
                {"stalledAt": isoformat(self.stalled_at), "stallReason": self.stall_reason}
                if self.stalled_at is not None
                else {}
            ),
            **({"history": True} if self.history else {}),
        }

    def payload_public(self) -> dict:
        """The kind's details as the API shows them (camelCase, no file paths)."""
        hidden = {"media_file", "kind"}
        return {_camel(key): value for key, value in (self.payload or {}).items() if key not in hidden}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
