"""A message's delivery lifecycle: queued -> sent -> delivered -> read | failed, and retrying a failed one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select, tuple_, update

from extensions import db
from models import Message, MessageStatus, User, WaSession
from models.base import utcnow
from models.message import OUTBOUND, STATUS_RANK
from services.accounts.quotas import quota_refund, quota_refunds, quota_reserve
from services.errors import Conflict
from services.events.bus import event_publish, event_publish_many
from services.events.catalog import MessageStatusChanged
from services.events.log import events_record
from services.hosts.calls import messages_hand_off
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


@dataclass(frozen=True)
class StatusChange:
    """One move of a message along its lifecycle (see messages_status_set)."""

    message: Message
    status: str
    at: datetime
    error_code: str | None = None
    error: str | None = None


def messages_status_set(changes: list[StatusChange]) -> list[StatusChange]:
    """Apply a group of status changes in one transaction (each message moved forward only,
    never backwards; a message may move more than once), stamp them, then tell their owners
    (and so their stats and bulk batches: services/events/subscribers.py) in order, each
    user's as one group. Returns the changes made (those that would move a message back are skipped).

    The counters and the events' rows in the event log follow in the same transaction: a
    session's messages_sent once per session, a bulk batch's sent and failed counts once per
    batch. A failure whose code refunds gives the message's quota slot back, once however
    often it is asked (quota_refund)."""
    made: list[StatusChange] = []
    events: dict[str, list[MessageStatusChanged]] = {}
    sent_by_session: Counter[str] = Counter()
    settled_by_batch: Counter[tuple[str, bool]] = Counter()
    for change in changes:
        message, status = change.message, change.status
        if status == MessageStatus.FAILED:
            if message.status != MessageStatus.QUEUED:
                continue
            message.error_code, message.error = change.error_code, change.error
            if quota_refunds(change.error_code):
                quota_refund(message)
        elif STATUS_RANK.get(status, -1) <= STATUS_RANK.get(message.status, 99):
            continue
        settled = message.status == MessageStatus.QUEUED  # it leaves the queue now: sent or failed
        if status == MessageStatus.SENT:
            sent_by_session[message.session_id] += 1
        if settled and message.batch_id:  # counted in the same transaction as the status itself
            settled_by_batch[(message.batch_id, status == MessageStatus.FAILED)] += 1
        message.status = status
        setattr(message, STATUS_TIMESTAMP[status], change.at)
        message.updated_at = utcnow()  # the event's timestamp, as its row will have it
        events.setdefault(message.user_id, []).append(MessageStatusChanged.of(message, settled=settled))
        made.append(change)
    if not made:
        return made
    for session_id, count in sent_by_session.items():
        db.session.execute(
            update(WaSession).where(WaSession.id == session_id).values(messages_sent=WaSession.messages_sent + count)
        )
    for (batch_id, failed), count in settled_by_batch.items():
        batch_count_settled(batch_id, failed=failed, count=count)
    events_record(events.items())  # the event log's rows, in this same transaction
    db.session.commit()
    for user_id, user_events in events.items():
        event_publish_many(user_id, user_events)
    return made


@dataclass(frozen=True)
class Receipt:
    """WhatsApp says a message of a session reached `status` (delivered, read, played) at `at`."""

    wa_id: str
    status: str
    at: datetime


@dataclass(frozen=True)
class SendSettled:
    """How the engine host's send of a message ended: `status` sent or failed (with its code
    and reason), or None for a message taken but not tried, whose attempt is given back."""

    message_id: str
    status: str | None
    at: datetime | None = None
    error_code: str | None = None
    error: str | None = None


def messages_settle(sends: list[SendSettled], receipts: list[tuple[str, Receipt]]) -> None:
    """Write what the engine host learned in one transaction, whatever sessions it concerns:
    the outcomes of sends, then receipts ((session id, receipt) pairs, in their order). One
    read of their messages (rows locked in id order, so concurrent writers never deadlock),
    each moved forward only, one commit, then their events.

    A receipt can overtake its message's own send outcome (a send's outcome is written after
    the send): a message still queued was sent, so it is marked sent first, and the send's
    own "sent" then finds it done."""
    ids = list(dict.fromkeys(send.message_id for send in sends))
    pairs = list(dict.fromkeys((session_id, receipt.wa_id) for session_id, receipt in receipts))
    wanted = []
    if ids:
        wanted.append(Message.id.in_(ids))
    if pairs:
        wanted.append(tuple_(Message.session_id, Message.wa_id).in_(pairs))
    if not wanted:
        return
    by_id: dict[str, Message] = {}
    by_pair: dict[tuple[str, str], Message] = {}
    for message in db.session.scalars(
        select(Message)
        .where(or_(*wanted))
        .order_by(Message.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ):
        by_id[message.id] = message
        if message.wa_id is not None:
            by_pair.setdefault((message.session_id, message.wa_id), message)
    changes: list[StatusChange] = []
    given_back = False
    for send in sends:
        message = by_id.get(send.message_id)
        if message is None:
            continue
        if send.status is None:
            message.attempts -= 1  # given back: it was not sent
            given_back = True
        else:
            changes.append(StatusChange(message, send.status, send.at, send.error_code, send.error))
    for session_id, receipt in receipts:
        message = by_pair.get((session_id, receipt.wa_id))
        if message is None:
            continue
        if message.status == MessageStatus.QUEUED and message.direction == OUTBOUND:
            changes.append(StatusChange(message, MessageStatus.SENT, at=receipt.at))
        changes.append(StatusChange(message, receipt.status, at=receipt.at))
    if not messages_status_set(changes):
        if given_back:
            db.session.commit()
        else:
            db.session.rollback()  # let go of the rows read


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
    messages_hand_off(session, [message])  # or the relay, once Redis is back
    event_publish(message.user_id, MessageStatusChanged.of(message))  # queued again: its batch is recounted
    return message


def _not_retryable(message: Message) -> Conflict:
    return Conflict(
        f"Only failed outgoing messages can be retried; this one is {message.status}",
        error="Message not retryable",
        code="MESSAGE_NOT_RETRYABLE",
    )
