"""Sending a message: checked, persisted as queued (or scheduled) with its quota slot, handed to the engine host."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from engines.outgoing import Outgoing
from extensions import db
from models import Message, MessageStatus, SessionStatus, User, WaSession
from models.base import commit_keeping_loaded
from services.accounts.quotas import quota_keep, quota_reserve
from services.contacts.book import contact_phone_for_lid
from services.errors import ApiError, Conflict, ServiceUnavailable
from services.events.bus import event_publish
from services.events.catalog import MessageStatusChanged
from services.governor.pace import health_after_send, send_queue, session_pace
from services.hosts.calls import messages_hand_off
from services.hosts.routing import session_overloaded_for
from services.messaging.outgoing import outgoing_parse, outgoing_preview, outgoing_store
from services.messaging.scheduling import send_at_parse
from services.platform.metrics import sends_settled
from services.platform.outages import is_outage, outage_rollback
from services.platform.phones import is_group_id, recipient_normalize
from services.platform.settled import SAFETY_SECONDS, settled_listener
from services.sessions.lifecycle import session_get, session_require_connected
from services.sessions.numbers import numbers_check

log = logging.getLogger(__name__)
# How a message to a number WhatsApp does not know ends: as the engines report it.
NOT_ON_WHATSAPP = {
    "status": MessageStatus.FAILED,
    "error_code": "NUMBER_NOT_ON_WHATSAPP",
    "error": "Number not on WhatsApp",
}


def new_wa_id() -> str:
    """A WhatsApp-style message id (3EB0 + 18 hex digits), chosen before the first attempt."""
    return "3EB0" + secrets.token_hex(9).upper()


def message_send(
    user: User,
    session_id: str,
    *,
    to: str,
    text: str | None = None,
    content: dict | None = None,
    idempotency_key: str | None,
    simulated: bool = False,
    send_at: str | None = None,
) -> Message:
    """Persist a message as queued and enqueue it; a repeated idempotency key returns the first.

    With `send_at` (ISO 8601) it is stored as scheduled and goes at that time through the
    session's send queue; the session need not be connected until then.

    The message is `text`, or any kind `content` (a send request's body, checked by its
    schema; see services/messaging/outgoing.py) describes. `simulated` (a test key's send)
    checks everything a real send checks, then answers with an unsaved message marked sent
    (id `sim_...`): nothing is stored, enqueued or counted.
    """
    session = session_get(user, session_id)
    phone = contact_phone_for_lid(session, to) if isinstance(to, str) and to.strip().endswith("@lid") else None
    phone = phone or recipient_normalize(to)
    if content is None:
        outgoing = Outgoing("text", text=text)
    else:
        outgoing = outgoing_parse(session, content)
    preview = outgoing_preview(outgoing)
    scheduled_for = send_at_parse(send_at)
    if idempotency_key and not simulated:
        earlier = _by_idempotency_key(user, idempotency_key)
        if earlier is not None:
            return _same_request(earlier, phone, preview)
    if simulated:
        session_require_connected(session, "connect it (and scan the QR) before sending")
        return message_simulated(user, session, phone=phone, text=preview, type=outgoing.kind)
    session_require_not_overloaded(session)
    # When the session's pace holds the message back, whether WhatsApp knows the number is
    # asked first (the check is cached), so the answer is the same whatever the pace does; a
    # message that goes at once finds out by being sent, and its answer waits for that.
    unknown = (
        scheduled_for is None
        and session.status == SessionStatus.CONNECTED
        and pace_holds(session)
        and recipient_unknown(user, session, phone)
    )
    quota = quota_reserve(user)
    try:
        if scheduled_for is None:
            session_require_connected(session, "connect it (and scan the QR) before sending")
    except ApiError as exc:  # a client error: the slot is kept (aulm's refund matrix)
        quota_keep(user.id, quota.period)
        db.session.commit()
        exc.headers.update(quota.headers())
        raise
    message = Message(
        user_id=user.id,
        session_id=session.id,
        phone=phone,
        body=preview,
        type=outgoing.kind,
        wa_id=new_wa_id(),
        idempotency_key=idempotency_key or None,
        dispatched_at=datetime.now(UTC),
        quota_period=quota.period,
        **({"status": MessageStatus.SCHEDULED, "send_after": scheduled_for} if scheduled_for else {}),
        **(NOT_ON_WHATSAPP | {"failed_at": datetime.now(UTC)} if unknown else {}),
    )
    db.session.add(message)
    try:
        db.session.flush()
        outgoing_store(message, outgoing)
        commit_keeping_loaded()
    except IntegrityError:  # a concurrent request with the same key got there first (its slot is undone too)
        db.session.rollback()
        return _same_request(_by_idempotency_key(user, idempotency_key), phone, preview)
    # Stored: from here on the send is accepted whatever Redis does (the relay hands over
    # what could not be handed over now).
    if unknown:  # failed as the engine would have failed it: stored, its slot kept, never sent
        sends_settled([(MessageStatus.FAILED, NOT_ON_WHATSAPP["error_code"])])
        try:
            event_publish(user.id, MessageStatusChanged.of(message))
            health_after_send(session, NOT_ON_WHATSAPP["error_code"])  # a list full of unknown numbers still pauses
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("message %s: stored as not on WhatsApp; its event is lost: %s", message.id, exc)
        return message
    message.handed_off = messages_hand_off(session, [message])
    return message


def pace_holds(session: WaSession) -> bool:
    """Whether a message queued now would be held back: the session is paused, a pace rule
    (gap, ceilings, quiet hours) holds the next send, or messages wait ahead of it with a
    gap between each. Without a gap, messages ahead of it go as fast as WhatsApp takes them."""
    if session.paused_at is not None:
        return True
    pace = session_pace(session)
    queue = send_queue(session.id)
    if queue.blocked_until(pace, time.time(), paired_at=session.paired_at) is not None:
        return True
    return pace.min_gap_seconds + pace.jitter_seconds > 0 and queue.depth() > 0


def recipient_unknown(user: User, session: WaSession, phone: str) -> bool:
    """Whether the number check says WhatsApp does not know `phone` (a group is never unknown
    here); a check that cannot be made now says nothing, and the send itself finds out."""
    if is_group_id(phone):
        return False
    try:
        [answer] = numbers_check(user, session.id, [phone])
    except ApiError:
        return False
    return answer["exists"] is False


def session_require_not_overloaded(session: WaSession) -> None:
    """503 with Retry-After while WhatsApp is backing the session off; nothing is reserved."""
    seconds = session_overloaded_for(session.id)
    if seconds is not None:
        raise ServiceUnavailable(
            f"WhatsApp is overloaded for this session; try again in {seconds} s",
            error="Service unavailable",
            code="ENGINE_OVERLOADED",
            headers={"Retry-After": str(seconds)},
        )


def message_simulated(user: User, session: WaSession, *, phone: str, text: str, **fields: object) -> Message:
    """What a test key's send answers with: a message as sent, never added to the database."""
    now = datetime.now(UTC)
    message = Message(
        id="sim_" + secrets.token_hex(16),
        user_id=user.id,
        session_id=session.id,
        phone=phone,
        body=text,
        status=MessageStatus.SENT,
        created_at=now,
        sent_at=now,
        updated_at=now,
        **fields,
    )
    message.simulated = True
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


def message_wait(message: Message, seconds: float) -> Message:
    """The message once the engine has answered (sent or failed), or as it is when time is up.

    The request holds no database connection while it waits: it is woken when the engine
    host announces the outcome (services/platform/settled.py) and then reads the message once.
    The message is stored, so it is answered for whatever happens meanwhile: with Redis
    down (nothing would wake the request, and no engine host takes work) it is answered as
    stored at once, and if Redis or the database fails during the wait, as last read. It
    comes back detached from the session, as read: answering it reads nothing again.
    """
    if message.status == MessageStatus.QUEUED and seconds > 0 and message.handed_off:
        _wait(message, seconds)
    if inspect(message).persistent:
        db.session.expunge(message)
    return message


def _wait(message: Message, seconds: float) -> None:
    message_id, last_read = message.id, _loaded(message)
    try:
        listener = settled_listener()
        if not listener.subscribed.is_set():
            return
        woken = listener.register(message_id)
        try:
            deadline = time.monotonic() + seconds
            while True:
                if db.session.get(Message, message_id, populate_existing=True) is None:  # deleted meanwhile
                    break
                last_read = _loaded(message)
                if message.status != MessageStatus.QUEUED or time.monotonic() >= deadline:
                    return
                db.session.rollback()  # no transaction, and so no connection, is held while waiting
                woken.wait(min(deadline - time.monotonic(), SAFETY_SECONDS))
        finally:
            listener.unregister(message_id, woken)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("message %s: answered as last read, the wait was cut short: %s", message_id, exc)
        outage_rollback()
    for key, value in last_read.items():  # as it was last read, without reading it again
        set_committed_value(message, key, value)


def _loaded(message: Message) -> dict:
    """The message's columns as loaded (reading none that is not)."""
    state = inspect(message)
    return {key: state.dict[key] for key in state.mapper.column_attrs.keys() if key in state.dict}
