"""Messages: sending through the queue, their delivery lifecycle, inbound ones, and reading them."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Message, MessageStatus, User, WaSession
from models.base import isoformat
from models.message import INBOUND, STATUS_RANK
from services.engine_hosts import engine_queue_for
from services.errors import Conflict, NotFound, ValidationError
from services.phones import phone_normalize
from services.realtime import event_emit
from services.sessions import session_get, session_require_connected

MAX_TEXT_LENGTH = 4096
MAX_IDEMPOTENCY_KEY = 255
# The failed-messages list previews texts as the WAMessenger doc does: "Hello, this is a test mess..."
PREVIEW_LENGTH = 26
SEND_JOB = "jobs.engine.engine_message_send"
FINAL_STATUSES = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PLAYED}
STATUS_TIMESTAMP = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.PLAYED: "played_at",
    MessageStatus.FAILED: "failed_at",
}


def new_wa_id() -> str:
    """A WhatsApp-style message id (3EB0 + 18 hex digits), chosen before the first attempt."""
    return "3EB0" + secrets.token_hex(9).upper()


def text_check(text: object, field: str = "message") -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(
            f"'{field}' is required: the text to send", code="EMPTY_MESSAGE", details={"field": field}
        )
    if len(text) > MAX_TEXT_LENGTH:
        raise ValidationError(
            f"'{field}' is too long: at most {MAX_TEXT_LENGTH} characters",
            code="MESSAGE_TOO_LONG",
            details={"field": field},
        )
    return text


def message_enqueue(message: Message, session: WaSession) -> None:
    """Hand a persisted, committed message to the engine host that owns its session."""
    engine_queue_for(session.engine_host).enqueue(
        SEND_JOB, message.id, job_id=f"send-{message.id}", result_ttl=600, failure_ttl=86400
    )


def message_send(user: User, session_id: str, *, to: object, text: object, idempotency_key: str | None) -> Message:
    """Persist a text message as queued and enqueue it; a repeated idempotency key returns the first."""
    session = session_get(user, session_id)
    if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters", code="INVALID_IDEMPOTENCY_KEY"
        )
    phone = phone_normalize(to)
    text = text_check(text)
    if idempotency_key:
        earlier = _by_idempotency_key(user, idempotency_key)
        if earlier is not None:
            return _same_request(earlier, phone, text)
    session_require_connected(session, "connect it (and scan the QR) before sending")
    message = Message(
        user_id=user.id,
        session_id=session.id,
        phone=phone,
        body=text,
        wa_id=new_wa_id(),
        idempotency_key=idempotency_key or None,
        dispatched_at=datetime.now(UTC),
    )
    db.session.add(message)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent request with the same key got there first
        db.session.rollback()
        return _same_request(_by_idempotency_key(user, idempotency_key), phone, text)
    message_enqueue(message, session)
    return message


def _by_idempotency_key(user: User, key: str) -> Message | None:
    return db.session.scalar(select(Message).where(Message.user_id == user.id, Message.idempotency_key == key))


def _same_request(message: Message, phone: str, text: str) -> Message:
    if (message.phone, message.body) != (phone, text):
        raise Conflict(
            "This Idempotency-Key was already used for a different message",
            error="Idempotency key reused",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    return message


def message_wait(message_id: str, seconds: float) -> Message:
    """Re-read the message until the engine has answered (sent or failed) or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        db.session.rollback()
        message = db.session.get(Message, message_id)
        if message.status != MessageStatus.QUEUED or time.monotonic() >= deadline:
            return message
        time.sleep(0.05)


def message_status_set(
    message: Message, status: str, *, at: datetime, error_code: str | None = None, error: str | None = None
) -> bool:
    """Move a message along its lifecycle (never backwards), stamp it, tell its owner."""
    if status == MessageStatus.FAILED:
        if message.status != MessageStatus.QUEUED:
            return False
        message.error_code, message.error = error_code, error
    elif STATUS_RANK.get(status, -1) <= STATUS_RANK.get(message.status, 99):
        return False
    if status == MessageStatus.SENT:
        db.session.execute(
            update(WaSession)
            .where(WaSession.id == message.session_id)
            .values(messages_sent=WaSession.messages_sent + 1)
        )
    message.status = status
    setattr(message, STATUS_TIMESTAMP[status], at)
    db.session.commit()
    event_emit(message.user_id, "message_status", message.to_status_event())
    from services.stats import stats_refresh_soon

    stats_refresh_soon(message.user_id)
    if message.batch_id:
        from services.bulk import batch_progress

        batch_progress(message.batch_id)
    return True


def message_receipt(session_id: str, wa_id: str, status: str, at: datetime) -> None:
    message = db.session.scalar(select(Message).where(Message.session_id == session_id, Message.wa_id == wa_id))
    if message is not None:
        message_status_set(message, status, at=at)


def message_inbound(session_id: str, *, wa_id: str, sender: str, text: str, at: datetime) -> Message | None:
    """Store a message a contact sent to the session (once), count it, tell the owner."""
    session = db.session.get(WaSession, session_id)
    duplicate = db.session.scalar(select(Message.id).where(Message.session_id == session_id, Message.wa_id == wa_id))
    if session is None or duplicate:
        return None
    message = Message(
        user_id=session.user_id,
        session_id=session_id,
        direction=INBOUND,
        phone=sender,
        body=text,
        wa_id=wa_id,
        status=MessageStatus.RECEIVED,
        created_at=at,
    )
    db.session.add(message)
    session.messages_received += 1
    db.session.commit()
    event_emit(
        session.user_id,
        "message",
        {
            "messageId": message.id,
            "sessionId": session_id,
            "from": sender,
            "message": text,
            "type": "text",
            "timestamp": isoformat(at),
        },
    )
    from services.stats import stats_refresh_soon

    stats_refresh_soon(session.user_id)
    return message


def messages_failed(user: User, limit: object) -> list[dict]:
    limit = _limit(limit, default=5, maximum=100)
    query = (
        select(Message)
        .where(Message.user_id == user.id, Message.status == MessageStatus.FAILED)
        .order_by(Message.failed_at.desc())
        .limit(limit)
    )
    return [
        {
            "id": message.id,
            "recipient": message.phone,
            "error": message.error,
            "code": message.error_code,
            "timestamp": isoformat(message.failed_at),
            "message": message.body if len(message.body) <= PREVIEW_LENGTH else message.body[:PREVIEW_LENGTH] + "...",
            "sessionId": message.session_id,
        }
        for message in db.session.scalars(query)
    ]


def messages_list(user: User, *, session_id=None, status=None, direction=None, page=None, limit=None) -> dict:
    limit = _limit(limit, default=50, maximum=200)
    page = _limit(page, default=1, maximum=10**6, field="page")
    query = select(Message).where(Message.user_id == user.id)
    if session_id:
        query = query.where(Message.session_id == session_id)
    if status:
        query = query.where(Message.status == status)
    if direction:
        if direction not in ("inbound", "outbound"):
            raise ValidationError("'direction' must be inbound or outbound", code="INVALID_FIELD")
        query = query.where(Message.direction == direction)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Message.created_at.desc()).limit(limit).offset((page - 1) * limit))
    return {"messages": [m.to_dict() for m in rows], "total": total, "page": page, "limit": limit}


def messages_recent(user: User, session_id: str, limit: int = 20) -> list[Message]:
    """A session's latest messages, oldest first (as a chat reads)."""
    query = (
        select(Message)
        .where(Message.user_id == user.id, Message.session_id == session_id)
        .order_by(Message.created_at.desc())
        .limit(limit)
    )
    return list(reversed(db.session.scalars(query).all()))


def message_get(user: User, message_id: str) -> Message:
    message = db.session.scalar(select(Message).where(Message.id == message_id, Message.user_id == user.id))
    if message is None:
        raise NotFound("The requested message does not exist", error="Message not found", code="MESSAGE_NOT_FOUND")
    return message


def _limit(value: object, *, default: int, maximum: int, field: str = "limit") -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"'{field}' must be a whole number", code="INVALID_FIELD") from exc
    if number < 1:
        raise ValidationError(f"'{field}' must be at least 1", code="INVALID_FIELD")
    return min(number, maximum)


def simulate_inbound(user: User, session_id: str, *, sender: object, text: object) -> None:
    """Simulator only: have a contact send the session a text, through the engine host."""
    session = session_get(user, session_id)
    sender = phone_normalize(sender, field="from")
    text = text_check(text)
    session_require_connected(session, "only a connected session receives messages")
    engine_queue_for(session.engine_host).enqueue("jobs.engine.engine_simulate_inbound", session.id, sender, text)
