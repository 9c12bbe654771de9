"""A message's delivery lifecycle: queued -> sent -> delivered -> read | failed, and retrying a failed one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from extensions import db
from models import Message, MessageStatus, User, WaSession
from models.message import OUTBOUND, STATUS_RANK
from services.accounts.quotas import quota_refund, quota_refunds, quota_reserve
from services.errors import Conflict
from services.events.bus import event_publish
from services.events.catalog import MessageStatusChanged
from services.hosts.calls import message_enqueue
from services.messaging.bulk import batch_count_settled
from services.messaging.history import message_get
from services.sessions.lifecycle import session_require_connected

FINAL_STATUSES = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PLAYED}
STATUS_TIMESTAMP = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.PLAYED: "played_at",
    MessageStatus.FAILED: "failed_at",
}


def message_status_set(
    message: Message, status: str, *, at: datetime, error_code: str | None = None, error: str | None = None
) -> bool:
    """Move a message along its lifecycle (never backwards), stamp it, tell its owner (and so
    its stats and its bulk batch: services/events/subscribers.py)."""
    if status == MessageStatus.FAILED:
        if message.status != MessageStatus.QUEUED:
            return False
        message.error_code, message.error = error_code, error
        if quota_refunds(error_code):
            quota_refund(message)
    elif STATUS_RANK.get(status, -1) <= STATUS_RANK.get(message.status, 99):
        return False
    settled = message.status == MessageStatus.QUEUED  # it leaves the queue now: sent or failed
    if status == MessageStatus.SENT:
        db.session.execute(
            update(WaSession)
            .where(WaSession.id == message.session_id)
            .values(messages_sent=WaSession.messages_sent + 1)
        )
    if settled and message.batch_id:  # counted in the same transaction as the status itself
        batch_count_settled(message.batch_id, failed=status == MessageStatus.FAILED)
    message.status = status
    setattr(message, STATUS_TIMESTAMP[status], at)
    db.session.commit()
    event_publish(message.user_id, MessageStatusChanged.of(message, settled=settled))
    return True


def message_receipt(session_id: str, wa_id: str, status: str, at: datetime) -> None:
    message = db.session.scalar(select(Message).where(Message.session_id == session_id, Message.wa_id == wa_id))
    if message is not None:
        message_status_set(message, status, at=at)


def message_retry(user: User, message_id: str) -> Message:
    """Send a failed outgoing message again: the same row (and WhatsApp id), queued afresh."""
    message = message_get(user, message_id)
    if message.direction != OUTBOUND or message.status != MessageStatus.FAILED:
        raise _not_retryable(message)
    if not message.retry_can_help:
        raise Conflict(
            f"Sending it again cannot help: {message.error or message.error_code}",
            error="Message not retryable",
            code="MESSAGE_NOT_RETRYABLE",
        )
    session = message.session
    session_require_connected(session, "reconnect it before retrying")
    # A refunded message takes a new slot; one whose failure kept its slot uses it again.
    period = message.quota_period or quota_reserve(user).period
    # Conditional, so a double click (or two tabs) queues it once, never over a send in flight.
    requeued = db.session.execute(
        update(Message)
        .where(Message.id == message.id, Message.status == MessageStatus.FAILED)
        .values(
            status=MessageStatus.QUEUED,
            error=None,
            error_code=None,
            failed_at=None,
            attempts=0,
            dispatched_at=datetime.now(UTC),
            quota_period=period,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not requeued:
        db.session.rollback()  # and the slot just reserved with it
        db.session.refresh(message)
        raise _not_retryable(message)
    db.session.commit()
    db.session.refresh(message)
    message_enqueue(message, session)
    event_publish(message.user_id, MessageStatusChanged.of(message))  # queued again: its batch is recounted
    return message


def _not_retryable(message: Message) -> Conflict:
    return Conflict(
        f"Only failed outgoing messages can be retried; this one is {message.status}",
        error="Message not retryable",
        code="MESSAGE_NOT_RETRYABLE",
    )
