"""Scheduled messages: when they go (`sendAt`), listed, moved or called off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from extensions import db
from models import Message, MessageStatus, User, WaSession
from services.accounts.quotas import quota_refund
from services.errors import Conflict, ValidationError
from services.events.bus import event_publish
from services.events.catalog import MessageStatusChanged
from services.governor.pace import send_queue
from services.hosts.calls import message_enqueue
from services.messaging.history import message_get
from services.platform.paging import page_number
from services.sessions.lifecycle import session_get

# How far ahead a message may be scheduled, and how late a `sendAt` may be and still go now.
SCHEDULE_MAX_AHEAD = timedelta(days=366)
SCHEDULE_PAST_GRACE = timedelta(seconds=60)


def send_at_parse(value: object, *, required: bool = False) -> datetime | None:
    """A `sendAt`: an ISO 8601 time with its offset ("2026-12-01T09:30:00+05:30"), in the
    future (a minute late still counts: it goes now). None when absent (or that late)."""
    if value is None and not required:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationError(
            "'sendAt' must be an ISO 8601 time with its offset, like 2026-12-01T09:30:00+05:30",
            code="INVALID_SEND_AT",
        )
    now = datetime.now(UTC)
    if moment < now - SCHEDULE_PAST_GRACE:
        raise ValidationError("'sendAt' is in the past", code="INVALID_SEND_AT")
    if moment > now + SCHEDULE_MAX_AHEAD:
        raise ValidationError("'sendAt' is more than a year ahead", code="INVALID_SEND_AT")
    if moment <= now and not required:
        return None
    return max(moment, now).astimezone(UTC)


def scheduled_list(
    user: User, *, session_id: str | None = None, limit: object = None, only_sessions: list[str] | None = None
) -> list[Message]:
    """The user's scheduled messages, soonest first."""
    query = select(Message).where(Message.user_id == user.id, Message.status == MessageStatus.SCHEDULED)
    if session_id:
        session_get(user, session_id)
        query = query.where(Message.session_id == session_id)
    if only_sessions is not None:
        query = query.where(Message.session_id.in_(only_sessions))
    return db.session.scalars(
        query.order_by(Message.send_after).limit(page_number(limit, default=100, maximum=500))
    ).all()


def _scheduled_get(user: User, message_id: str) -> Message:
    message = message_get(user, message_id)
    if message.status != MessageStatus.SCHEDULED:
        raise Conflict(
            f"This message is {message.status}, not scheduled: it can no longer be changed", code="NOT_SCHEDULED"
        )
    return message


def scheduled_change(message: Message, **values: object) -> bool:
    """Change a message only while it is still scheduled (in the caller's transaction): the
    owner's cancel and the engine host taking it can never both win."""
    return bool(
        db.session.execute(
            update(Message)
            .where(Message.id == message.id, Message.status == MessageStatus.SCHEDULED)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def scheduled_move(user: User, message_id: str, send_at: object) -> Message:
    """Send a scheduled message at another time."""
    message = _scheduled_get(user, message_id)
    moment = send_at_parse(send_at, required=True)
    moved = scheduled_change(message, send_after=moment)
    db.session.commit()
    if not moved:  # it went out meanwhile
        return _scheduled_get(user, message_id)
    db.session.refresh(message)
    message_enqueue(message, db.session.get(WaSession, message.session_id))
    return message


def scheduled_cancel(user: User, message_id: str) -> Message:
    """Call a scheduled message off: it is never sent, and its quota slot comes back."""
    message = _scheduled_get(user, message_id)
    if not scheduled_change(message, status=MessageStatus.CANCELLED):  # the engine host took it a moment ago
        db.session.rollback()
        return _scheduled_get(user, message_id)
    db.session.refresh(message)
    quota_refund(message)
    db.session.commit()
    send_queue(message.session_id).forget(message.id)
    event_publish(message.user_id, MessageStatusChanged.of(message))
    return message
