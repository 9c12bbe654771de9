"""Every domain event, declared once: its payload, its Socket.IO name, its webhook name (when
endpoints can ask for it) and whether its session's SSE stream keeps it.

A payload's fields are declared in snake_case and go out camelCase (`session_id` ->
`sessionId`), in the order declared, exactly as Socket.IO clients, SSE clients and webhook
receivers have always had them. A field marked `exclude=True` is for subscribers only and
never leaves the server.

To add an event: a class here, listed in EVENTS, published (services/events/bus.py) by the
service where it happens, after its change is committed. Socket.IO, SSE and webhooks carry
it from its declaration; subscribers of its own go in services/events/subscribers.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PrivateAttr
from pydantic.alias_generators import to_camel

from models import Message, WaSession
from models.base import isoformat
from services.events.cursor import cursor_encode

# A moment as the WAMessenger API writes it: 2024-01-15T10:30:00.000Z.
Timestamp = Annotated[datetime, PlainSerializer(isoformat, return_type=str)]


def _absent(value: object) -> bool:
    return value is None


class DomainEvent(BaseModel):
    """Something that happened to one of a user's sessions, as its owner hears of it."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )

    name: ClassVar[str]  # the Socket.IO event, and the SSE stream's `event:` line
    webhook: ClassVar[str | None] = None  # the webhook event endpoints subscribe to, if any
    streamed: ClassVar[bool] = False  # kept on its session's SSE stream

    # Its id in the event log, once it is written there (services/events/log.py).
    _logged_id: int | None = PrivateAttr(default=None)

    @property
    def logged_id(self) -> int | None:
        return self._logged_id

    def logged_as(self, event_id: int | None) -> None:
        self._logged_id = event_id

    @property
    def cursor(self) -> str | None:
        """Its cursor (GET /api/events?after=), once it is in the event log."""
        return cursor_encode(self._logged_id) if self._logged_id is not None else None

    def to_payload(self) -> dict[str, Any]:
        """The event's own fields, as the event log keeps them and webhooks carry them as `data`."""
        return self.model_dump(mode="json", by_alias=True)

    def to_live(self) -> dict[str, Any]:
        """The event as Socket.IO and SSE clients receive it: its fields, and its cursor as
        `eventId` once it is in the event log."""
        payload = self.to_payload()
        if self._logged_id is not None:
            payload["eventId"] = self.cursor
        return payload

    def webhook_data(self) -> dict[str, Any] | None:
        """The `data` of its webhook deliveries; None when this one makes none."""
        return self.to_payload() if self.webhook else None


class MessageReceived(DomainEvent):
    """A contact wrote to a session."""

    name = "message"
    webhook = "message.received"
    streamed = True

    message_id: str
    session_id: str
    sender: str = Field(alias="from")
    message: str
    type: str
    content: dict[str, Any] | None = Field(default=None, exclude_if=_absent)  # the kind's details, if any
    timestamp: Timestamp
    # Who wrote, by both of WhatsApp's names for them, when known: their phone number and
    # their LID ("<digits>@lid"). `from` is the number, or the LID's digits while none is known.
    phone: str | None = Field(default=None, exclude_if=_absent)
    lid: str | None = Field(default=None, exclude_if=_absent)
    history: bool | None = Field(default=None, exclude_if=_absent)  # true: from a history backfill


class MessageStatusChanged(DomainEvent):
    """A sent message's status changed (sent, delivered, read, failed)."""

    name = "message_status"
    webhook = "message.status"
    streamed = True

    message_id: str
    session_id: str
    batch_id: str | None
    to: str
    status: str
    error: str | None
    timestamp: Timestamp | None
    # It left the queue just now (sent or failed): its bulk batch, if any, moves on.
    settled: bool = Field(default=False, exclude=True)

    @classmethod
    def of(cls, message: Message, *, settled: bool = False) -> MessageStatusChanged:
        return cls(
            message_id=message.id,
            session_id=message.session_id,
            batch_id=message.batch_id,
            to=message.phone,
            status=message.status,
            error=message.error,
            timestamp=message.updated_at,
            settled=settled,
        )


class MessageReaction(DomainEvent):
    """A contact reacted to a message, or took the reaction back."""

    name = "message_reaction"
    streamed = True

    message_id: str
    session_id: str
    sender: str = Field(alias="from")
    emoji: str  # "" when taken back
    reactions: dict[str, str]  # every contact's reaction to the message
    timestamp: Timestamp


class PollVote(DomainEvent):
    """A contact voted on a poll, or took the vote back."""

    name = "poll_vote"
    streamed = True

    message_id: str
    session_id: str
    sender: str = Field(alias="from")
    options: list[str]  # the voter's choice now (none: vote taken back)
    results: list[dict[str, Any]]  # each option with its number of votes
    timestamp: Timestamp


class SessionQr(DomainEvent):
    """A session has a new QR code to scan."""

    name = "qr"
    webhook = "session.qr"
    streamed = True

    session_id: str
    qr_code: str  # a PNG data URL
    expires_at: Timestamp | None
    qr_text: str = Field(exclude=True)  # what the QR encodes

    def webhook_data(self) -> dict[str, Any]:
        # Receivers get the text the QR encodes rather than the image (far smaller).
        payload = self.to_payload()
        return {"sessionId": self.session_id, "qr": self.qr_text, "expiresAt": payload["expiresAt"]}


class SessionConnected(DomainEvent):
    """A session connected."""

    name = "connected"
    webhook = "session.connected"
    streamed = True

    session_id: str
    phone: str | None


class SessionReconnecting(DomainEvent):
    """A session lost its connection and is getting it back."""

    name = "reconnecting"
    streamed = True

    session_id: str


class SessionDisconnected(DomainEvent):
    """A session disconnected or was logged out."""

    name = "disconnected"
    webhook = "session.disconnected"
    streamed = True

    session_id: str
    reason: str | None


class SessionStatusChanged(DomainEvent):
    """A session's whole status, after each change of its connection."""

    name = "session_status"

    session_id: str
    status: str
    phone: str | None
    has_qr: bool = Field(alias="hasQR")
    reason: str | None

    @classmethod
    def of(cls, session: WaSession) -> SessionStatusChanged:
        return cls(
            session_id=session.id,
            status=session.status,
            phone=session.phone,
            has_qr=session.has_qr,
            reason=session.status_reason,
        )


class SessionPaused(DomainEvent):
    """The send governor paused a session to protect its number."""

    name = "session_paused"
    webhook = "session.paused"
    streamed = True

    session_id: str
    reason: str
    paused_at: Timestamp


class SessionResumed(DomainEvent):
    """A paused session's owner resumed its sending."""

    name = "session_resumed"
    streamed = True

    session_id: str


class PresenceUpdate(DomainEvent):
    """A contact came online, went offline, or is typing."""

    name = "presence_update"
    webhook = "presence.update"
    streamed = True

    session_id: str
    sender: str = Field(alias="from")
    state: str
    chat: str | None = Field(default=None, exclude_if=_absent)  # where they type (a group, say)
    last_seen: Timestamp | None = Field(default=None, exclude_if=_absent)
    timestamp: Timestamp
    lid: str | None = Field(default=None, exclude_if=_absent)  # their LID ("<digits>@lid"), when known


class HistoryProgress(DomainEvent):
    """A batch of a chat's older messages came from the phone and was stored (a backfill)."""

    name = "history_progress"
    webhook = "history.progress"
    streamed = True

    request_id: str
    session_id: str
    chat: str
    stored: int  # messages of this batch stored (those already kept are not stored twice)
    received: int  # messages the phone sent so far for this request
    requested: int | None  # the `count` asked for (none when asked `since` a time)


class HistoryCompleted(DomainEvent):
    """The phone sent the last batch of a backfill."""

    name = "history_completed"
    webhook = "history.completed"
    streamed = True

    request_id: str
    session_id: str
    chat: str
    received: int  # messages the phone sent for this request
    history_total: int  # history messages the chat now has


class BulkProgress(DomainEvent):
    """A bulk send moved on: its counts after one of its messages was answered."""

    name = "bulk_progress"
    webhook = "bulk.finished"

    batch_id: str
    session_id: str
    status: str
    total: int
    sent: int
    failed: int
    pending: int

    def webhook_data(self) -> dict[str, Any] | None:
        # Endpoints hear of a batch once, when it is finished, not at every step.
        return self.to_payload() if self.status == "finished" else None


class MessageStalled(DomainEvent):
    """The delivery watchdog found a sent message stuck (services/messaging/watchdog.py):
    WhatsApp never acknowledged it, or never confirmed its delivery, by its deadline."""

    name = "message_stalled"
    webhook = "message.stalled"
    streamed = True

    message_id: str
    session_id: str
    to: str
    status: str  # queued (never acknowledged) or sent (acknowledged, never delivered)
    reason: str  # no_server_ack | no_delivery_receipt
    detail: str | None  # what WhatsApp last said about it, when it said anything
    retried: bool  # queued again once, under the same WhatsApp id (it cannot arrive twice)
    timestamp: Timestamp


class SessionDegraded(DomainEvent):
    """A session that looked connected was found deaf (nothing heard, its liveness check
    failed): it is being reconnected."""

    name = "session_degraded"
    webhook = "session.degraded"
    streamed = True

    session_id: str
    reason: str
    deaf_count: int  # how often it was found deaf, this time included
    timestamp: Timestamp


class SessionRecovered(DomainEvent):
    """A session found deaf hears again after its reconnection."""

    name = "session_recovered"
    webhook = "session.recovered"
    streamed = True

    session_id: str
    deaf_seconds: float  # from its detection to its recovery
    timestamp: Timestamp


# Every event, those with a webhook first in the order endpoints list them.
EVENTS: tuple[type[DomainEvent], ...] = (
    MessageReceived,
    MessageStatusChanged,
    SessionConnected,
    SessionDisconnected,
    SessionQr,
    BulkProgress,
    SessionPaused,
    PresenceUpdate,
    MessageStalled,
    SessionDegraded,
    SessionRecovered,
    HistoryProgress,
    HistoryCompleted,
    SessionReconnecting,
    SessionStatusChanged,
    MessageReaction,
    PollVote,
    SessionResumed,
)
