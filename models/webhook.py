"""Webhook endpoints, the deliveries of events to them, and each delivery's attempts."""

import json
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import isoformat, new_id, utcnow

SECRET_PREFIX = "whsec_"
# What a list shows of a secret: its prefix and 4 hex digits (whsec_3f9a).
SECRET_HINT_LENGTH = len(SECRET_PREFIX) + 4


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # its next attempt is due (the first, or a manual redelivery)
    FAILED = "failed"  # the last attempt failed; a retry is scheduled at next_attempt_at
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # no attempt is scheduled any more: the ladder is used up, or the endpoint disabled


class Webhook(db.Model):
    __tablename__ = "webhooks"
    # Every event a user's sessions emit looks up the user's enabled endpoints.
    __table_args__ = (Index("ix_webhooks_user_enabled", "user_id", "enabled"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Only this session's events; None for every session of the account.
    session_id: Mapped[str | None] = mapped_column(ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What its deliveries look like (services/webhooks/formats.py): wagate, aulm, selfhosted, standard.
    format: Mapped[str] = mapped_column(String(16), default="wagate", server_default="wagate")
    # Kept as is, unlike an API key's hash: signing every delivery needs the secret itself.
    # It is shown once (on creation and rotation); lists show only its hint.
    secret: Mapped[str] = mapped_column(String(80))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # The first failure since the last success: failing for long enough disables the endpoint.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    @property
    def secret_hint(self) -> str:
        return self.secret[:SECRET_HINT_LENGTH]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events or []),
            "format": self.format,
            "sessionId": self.session_id,
            "enabled": self.enabled,
            "disabledReason": self.disabled_reason,
            "disabledAt": isoformat(self.disabled_at),
            "consecutiveFailures": self.consecutive_failures,
            "failingSince": isoformat(self.failing_since),
            "secretHint": self.secret_hint,
            "lastSuccessAt": isoformat(self.last_success_at),
            "lastFailureAt": isoformat(self.last_failure_at),
            "createdAt": isoformat(self.created_at),
            "updatedAt": isoformat(self.updated_at),
        }


class WebhookAttempt(db.Model):
    """One HTTP POST of a delivery: what the receiver answered, or why there was no answer."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number", name="uq_webhook_attempts_delivery_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[str | None] = mapped_column(String(500))

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_dict(self) -> dict:
        return {
            "attempt": self.number,
            "at": isoformat(self.at),
            "success": self.succeeded,
            "statusCode": self.status_code,
            "error": self.error,
            "latencyMs": self.latency_ms,
            "response": self.response,
        }


class WebhookDelivery(db.Model):
    """One event for one endpoint. Its id is the `deliveryId` every attempt carries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        # An endpoint's due deliveries, oldest first; the deliveries in hand (few, whoever's).
        Index("ix_webhook_deliveries_webhook_next", "webhook_id", "next_attempt_at"),
        Index("ix_webhook_deliveries_claimed", "claimed_until"),
        # Pruning the log (services/platform/retention.py) finds the old ones by age.
        Index("ix_webhook_deliveries_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    # The event log's id of the event delivered (its cursor, services/events/log.py); None for a test.
    event_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    # Not a foreign key: an account-wide endpoint keeps its log after the session is deleted.
    session_id: Mapped[str | None] = mapped_column(String(36))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    # Its endpoint's format when it was made: every attempt and redelivery keeps it.
    format: Mapped[str] = mapped_column(String(16), default="wagate", server_default="wagate")
    # The exact JSON bytes every attempt sends (fixed at creation, so redelivery is identical).
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the next attempt is due; while an attempt runs, when it counts as lost (its worker
    # died) and is made again. None once succeeded or dead.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while the delivery holds one of its endpoint's slots: lined up on the webhook queue,
    # or being attempted. Past that time the hold has lapsed (a lost job, a dead worker).
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        order_by=WebhookAttempt.number, lazy="selectin", passive_deletes=True
    )

    @property
    def last_attempt(self) -> WebhookAttempt | None:
        return self.attempt_log[-1] if self.attempt_log else None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "webhookId": self.webhook_id,
            "event": self.event,
            # The event's cursor, written as services/events/cursor.py writes every cursor.
            "eventId": f"{self.event_id:016x}" if self.event_id is not None else None,
            "sessionId": self.session_id,
            "test": self.test,
            "format": self.format,
            "status": self.status,
            "attempts": self.attempts,
            "nextAttemptAt": isoformat(self.next_attempt_at),
            "createdAt": isoformat(self.created_at),
            "payload": json.loads(self.body),
            "attemptLog": [attempt.to_dict() for attempt in self.attempt_log],
        }
