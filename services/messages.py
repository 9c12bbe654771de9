"""Messages: sending through the queue, their delivery lifecycle, inbound ones, and reading them."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, or_, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from engines.outgoing import KINDS, Outgoing
from extensions import db
from models import Message, MessageStatus, User, WaSession
from models.base import isoformat
from models.message import INBOUND, OUTBOUND, STATUS_RANK
from services.contacts import contact_seen
from services.engine_hosts import engine_queue_for, session_overloaded_for
from services.errors import ApiError, Conflict, NotFound, ServiceUnavailable, ValidationError
from services.outgoing import media_root, outgoing_parse, outgoing_preview, outgoing_store
from services.phones import phone_normalize, recipient_normalize
from services.quotas import quota_refund, quota_refunds, quota_reserve
from services.realtime import event_emit
from services.sessions import session_get, session_require_connected
from services.waiting import wait_until

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


def message_enqueue(message: Message, session: WaSession, *, again: bool = False) -> None:
    """Hand a persisted, committed message to the engine host that owns its session
    (`again`: once more, for a rescheduled message)."""
    job_id = f"send-{message.id}" + (f"-{secrets.token_hex(4)}" if again else "")
    engine_queue_for(session.engine_host).enqueue(
        SEND_JOB, message.id, job_id=job_id, result_ttl=600, failure_ttl=86400
    )


def message_send(
    user: User,
    session_id: str,
    *,
    to: object,
    text: object = None,
    content: dict | None = None,
    idempotency_key: str | None,
    simulated: bool = False,
    send_at: object = None,
) -> Message:
    """Persist a message as queued and enqueue it; a repeated idempotency key returns the first.

    With `send_at` (ISO 8601) it is stored as scheduled and goes at that time through the
    session's send queue; the session need not be connected until then.

    The message is `text`, or any kind `content` (a send request's body, see
    services/outgoing.py) describes. `simulated` (a test key's send) checks everything a
    real send checks, then answers with an unsaved message marked sent (id `sim_...`):
    nothing is stored, enqueued or counted.
    """
    session = session_get(user, session_id)
    if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters", code="INVALID_IDEMPOTENCY_KEY"
        )
    phone = recipient_normalize(to)
    if content is None:
        outgoing = Outgoing("text", text=text_check(text))
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
    quota = quota_reserve(user)
    try:
        if scheduled_for is None:
            session_require_connected(session, "connect it (and scan the QR) before sending")
    except ApiError as exc:  # a client error: the slot is kept (aulm's refund matrix)
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
    )
    db.session.add(message)
    try:
        db.session.flush()
        outgoing_store(message, outgoing)
        db.session.commit()
    except IntegrityError:  # a concurrent request with the same key got there first (its slot is undone too)
        db.session.rollback()
        return _same_request(_by_idempotency_key(user, idempotency_key), phone, preview)
    message_enqueue(message, session)
    return message


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
    return db.session.scalars(query.order_by(Message.send_after).limit(_limit(limit, default=100, maximum=500))).all()


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
    message_enqueue(message, db.session.get(WaSession, message.session_id), again=True)
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
    from services.pacing import send_queue

    send_queue(message.session_id).forget(message.id)
    event_emit(message.user_id, "message_status", message.to_status_event())
    return message


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
    """Re-read the message until the engine has answered (sent or failed) or time is up."""
    if message.status != MessageStatus.QUEUED:  # answered already (or simulated)
        return message
    message_id = message.id
    return wait_until(lambda: db.session.get(Message, message_id), lambda m: m.status != MessageStatus.QUEUED, seconds)


def message_status_set(
    message: Message, status: str, *, at: datetime, error_code: str | None = None, error: str | None = None
) -> bool:
    """Move a message along its lifecycle (never backwards), stamp it, tell its owner."""
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
    if settled and message.batch_id:
        from services.bulk import batch_count_settled

        batch_count_settled(message.batch_id, failed=status == MessageStatus.FAILED)
    message.status = status
    setattr(message, STATUS_TIMESTAMP[status], at)
    db.session.commit()
    event_emit(message.user_id, "message_status", message.to_status_event())
    from services.stats import stats_refresh_soon

    stats_refresh_soon(message.user_id)
    if settled and message.batch_id:
        from services.bulk import batch_progress

        batch_progress(message.batch_id)
    return True


def message_receipt(session_id: str, wa_id: str, status: str, at: datetime) -> None:
    message = db.session.scalar(select(Message).where(Message.session_id == session_id, Message.wa_id == wa_id))
    if message is not None:
        message_status_set(message, status, at=at)


def message_inbound(
    session_id: str,
    *,
    wa_id: str,
    sender: str,
    text: str,
    at: datetime,
    kind: str = "text",
    details: dict | None = None,
    media: bytes | None = None,
) -> Message | None:
    """Store a message a contact sent to the session (once), count it, tell the owner.

    `details` are the kind's (location, contact card, quoted message, group chat...),
    `media` its bytes (kept under DATA_DIR/media/inbound, up to INBOUND_MEDIA_MAX_BYTES).
    A reaction or a poll vote is not a message of its own: it is recorded on the message it
    reacts to, or the poll.
    """
    session = db.session.get(WaSession, session_id)
    duplicate = db.session.scalar(select(Message.id).where(Message.session_id == session_id, Message.wa_id == wa_id))
    if session is None or duplicate:
        return None
    details = dict(details or {})
    if kind == "reaction":
        _reaction_record(session, sender, details.get("reaction") or {}, at)
        return None
    if kind == "poll_vote":
        _poll_vote_record(session, sender, details.get("pollVote") or {}, at)
        return None
    message = Message(
        user_id=session.user_id,
        session_id=session_id,
        direction=INBOUND,
        phone=sender,
        body=text or _inbound_preview(kind, details),
        type=kind if kind in KINDS else "text",
        wa_id=wa_id,
        status=MessageStatus.RECEIVED,
        created_at=at,
    )
    db.session.add(message)
    db.session.flush()
    if media is not None:
        details |= inbound_media_store(message, media)
    message.payload = details or None
    session.messages_received += 1
    contact_seen(session, sender, push_name=details.get("pushName"), at=at)
    db.session.commit()
    event_emit(
        session.user_id,
        "message",
        {
            "messageId": message.id,
            "sessionId": session_id,
            "from": sender,
            "message": message.body,
            "type": message.type,
            **({"content": message.payload_public()} if message.payload else {}),
            "timestamp": isoformat(at),
        },
    )
    from services.stats import stats_refresh_soon

    stats_refresh_soon(session.user_id)
    return message


def _inbound_preview(kind: str, details: dict) -> str:
    place, card, poll = details.get("location") or {}, details.get("contact") or {}, details.get("poll") or {}
    named = place.get("name") or card.get("full_name") or poll.get("question") or details.get("filename")
    labels = {"image": "🖼 Photo", "video": "🎬 Video", "audio": "🎵 Audio", "ptt": "🎤 Voice message"}
    return named or labels.get(kind, f"[{kind}]")


def inbound_media_store(message: Message, media: bytes) -> dict:
    """Keep a received file (if not too big); what the message records about it."""
    limit = current_app.config["INBOUND_MEDIA_MAX_BYTES"]
    facts = {"size": len(media), "sha256": hashlib.sha256(media).hexdigest()}
    if len(media) > limit:
        return facts | {"media_dropped": f"larger than {limit} bytes"}
    folder = media_root() / "inbound"
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{message.id}.part"
    temporary.write_bytes(media)
    temporary.replace(folder / message.id)
    return facts | {"media_file": f"inbound/{message.id}"}


def _reaction_record(session: WaSession, sender: str, reaction: dict, at: datetime) -> None:
    """A contact reacted to one of the session's messages ("" takes the reaction back)."""
    target_wa_id = reaction.get("message_wa_id") or reaction.get("messageWaId")
    target = db.session.scalar(select(Message).where(Message.session_id == session.id, Message.wa_id == target_wa_id))
    if target is None:
        return
    emoji = reaction.get("emoji") or ""
    reactions = _payload_entry_set(target, "reactions", sender, emoji)
    event_emit(
        session.user_id,
        "message_reaction",
        {
            "messageId": target.id,
            "sessionId": session.id,
            "from": sender,
            "emoji": emoji,
            "reactions": reactions,
            "timestamp": isoformat(at),
        },
    )


def _poll_vote_record(session: WaSession, voter: str, vote: dict, at: datetime) -> None:
    """A contact voted on one of the session's polls: their latest choice replaces the earlier
    one (none takes the vote back). Engines name the options, or give their SHA-256 (WhatsApp's
    encrypted votes do)."""
    target = db.session.scalar(
        select(Message).where(Message.session_id == session.id, Message.wa_id == vote.get("messageWaId"))
    )
    poll = (target.payload or {}).get("poll") if target is not None else None
    if not poll:
        return
    options = list(poll.get("options") or [])
    by_hash = {hashlib.sha256(option.encode()).hexdigest(): option for option in options}
    chosen = [option for option in vote.get("options") or [] if option in options]
    chosen += [by_hash[digest] for digest in vote.get("optionHashes") or [] if digest in by_hash]
    chosen = list(dict.fromkeys(chosen))
    votes = _payload_entry_set(target, "votes", voter, chosen)
    event_emit(
        session.user_id,
        "poll_vote",
        {
            "messageId": target.id,
            "sessionId": session.id,
            "from": voter,
            "options": chosen,
            "results": poll_results(options, votes),
            "timestamp": isoformat(at),
        },
    )


def _payload_entry_set(message: Message, key: str, sender: str, value: object) -> dict:
    """Record what `sender` says of a message under payload[key] (an empty value takes it
    back), commit, and return the whole record: {sender: value}."""
    payload = dict(message.payload or {})
    entries = dict(payload.get(key) or {})
    if value:
        entries[sender] = value
    else:
        entries.pop(sender, None)
    payload[key] = entries
    message.payload = payload
    db.session.commit()
    return entries


def poll_results(options: list[str], votes: dict[str, list[str]]) -> list[dict]:
    """Each option of a poll with its number of votes, in the poll's order."""
    return [{"option": option, "votes": sum(option in chosen for chosen in votes.values())} for option in options]


def messages_failed(user: User, limit: object, *, only_sessions: list[str] | None = None) -> list[dict]:
    limit = _limit(limit, default=5, maximum=100)
    query = select(Message).where(Message.user_id == user.id, Message.status == MessageStatus.FAILED)
    if only_sessions is not None:
        query = query.where(Message.session_id.in_(only_sessions))
    query = query.order_by(Message.failed_at.desc()).limit(limit)
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


def messages_list(
    user: User,
    *,
    session_id=None,
    status=None,
    direction=None,
    chat=None,
    kind=None,
    since=None,
    until=None,
    cursor=None,
    page=None,
    limit=None,
    only_sessions=None,
) -> dict:
    """One page of the message log, newest first (`only_sessions`' messages, for an API key
    limited to them).

    Filters: session, chat (the other party's number), direction, status, type, and
    since/until (ISO 8601 times, since inclusive, until exclusive). Pages by `page`, or
    by `cursor` (the `nextCursor` of the page before), which stays right while messages
    keep arriving.
    """
    limit = _limit(limit, default=50, maximum=200)
    page = _limit(page, default=1, maximum=10**6, field="page")
    query = select(Message).where(Message.user_id == user.id)
    if only_sessions is not None:
        query = query.where(Message.session_id.in_(only_sessions))
    if session_id:
        query = query.where(Message.session_id == session_id)
    if status:
        if status not in list(MessageStatus):
            raise ValidationError(f"'status' must be one of {', '.join(MessageStatus)}", code="INVALID_FIELD")
        query = query.where(Message.status == status)
    if direction:
        if direction not in ("inbound", "outbound"):
            raise ValidationError("'direction' must be inbound or outbound", code="INVALID_FIELD")
        query = query.where(Message.direction == direction)
    if chat:
        query = query.where(Message.phone == phone_normalize(chat, field="chat"))
    if kind:
        if kind not in KINDS:
            raise ValidationError(f"'type' must be one of {', '.join(KINDS)}", code="INVALID_FIELD")
        query = query.where(Message.type == kind)
    if since:
        query = query.where(Message.created_at >= _instant(since, "since"))
    if until:
        query = query.where(Message.created_at < _instant(until, "until"))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    ordered = query.order_by(Message.created_at.desc(), Message.id.desc())
    if cursor:
        position = _cursor(user, cursor)
        if position is None:
            raise ValidationError("'cursor' is not a message of this log", code="INVALID_CURSOR")
        at, message_id = position
        ordered = ordered.where(or_(Message.created_at < at, (Message.created_at == at) & (Message.id < message_id)))
        rows = db.session.scalars(ordered.limit(limit + 1)).all()
    else:
        rows = db.session.scalars(ordered.limit(limit + 1).offset((page - 1) * limit)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "messages": [m.to_dict() for m in rows],
        "total": total,
        "page": None if cursor else page,
        "limit": limit,
        "nextCursor": rows[-1].id if more else None,
    }


def _instant(value: str, field: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(
            f"'{field}' must be an ISO 8601 time like 2026-11-23T10:00:00Z", code="INVALID_FIELD"
        ) from exc
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


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


def message_by_wa_id(session_id: str, wa_id: str | None) -> Message | None:
    """The session's message with this WhatsApp id: the one a reply quotes or a reaction is for."""
    if not wa_id:
        return None
    return db.session.scalar(select(Message).where(Message.session_id == session_id, Message.wa_id == wa_id))


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


def simulate_inbound(
    user: User, session_id: str, *, sender: object, text: object = None, content: dict | None = None
) -> None:
    """Simulator only: have a contact send the session a message, through the engine host.

    It is `text`, or any kind `content` describes (the same payload as a send).
    """
    session = session_get(user, session_id)
    sender = phone_normalize(sender, field="from")
    if content is not None and content.get("vote") is not None:
        _simulate_vote(session, sender, content["vote"])
        return
    message: str | dict = text_check(text) if content is None else ""
    media_file = None
    if content is not None:
        outgoing = outgoing_parse(session, content)
        message = outgoing.to_record()
        if outgoing.media is not None:
            media_file = f"simulated/{secrets.token_hex(16)}"
            path = Path(current_app.config["DATA_DIR"]) / "media" / media_file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(outgoing.media)
    session_require_connected(session, "only a connected session receives messages")
    engine_queue_for(session.engine_host).enqueue(
        "jobs.engine.engine_simulate_inbound", session.id, sender, message, media_file
    )


def _simulate_vote(session: WaSession, sender: str, vote: object) -> None:
    """A contact votes on one of the session's polls: {"messageId", "options": [...]}."""
    if not isinstance(vote, dict) or not isinstance(vote.get("messageId"), str):
        raise ValidationError("'vote' must be an object {messageId, options}", code="INVALID_FIELD")
    poll = db.session.scalar(select(Message).where(Message.id == vote["messageId"], Message.session_id == session.id))
    if poll is None or poll.type != "poll":
        raise NotFound("No poll with that id in this session", code="POLL_NOT_FOUND")
    options, known = vote.get("options"), poll.payload["poll"]["options"]
    if not isinstance(options, list) or any(option not in known for option in options):
        raise ValidationError(f"'options' must be a list of the poll's options: {known}", code="INVALID_FIELD")
    if len(options) > 1 and not poll.payload["poll"].get("multiple_answers"):
        raise ValidationError("This poll takes one answer", code="INVALID_FIELD")
    session_require_connected(session, "only a connected session receives votes")
    engine_queue_for(session.engine_host).enqueue(
        "jobs.engine.engine_simulate_vote", session.id, sender, poll.wa_id, options
    )


def simulate_address_book(user: User, session_id: str, contacts: object) -> int:
    """Simulator only: the simulated phone's address book syncs to the session."""
    session = session_get(user, session_id)
    if not isinstance(contacts, list) or len(contacts) > 5000:
        raise ValidationError("'contacts' must be a list of up to 5000 {phone, name}", code="INVALID_CONTACTS")
    entries = []
    for entry in contacts:
        if not isinstance(entry, dict):
            raise ValidationError("Each contact is an object {phone, name}", code="INVALID_CONTACTS")
        name = entry.get("name")
        entries.append({"phone": phone_normalize(entry.get("phone"), field="contacts"), "name": str(name or "")[:256]})
    session_require_connected(session, "the phone syncs its address book while connected")
    engine_queue_for(session.engine_host).enqueue("jobs.engine.engine_simulate_address_book", session.id, entries)
    return len(entries)


# A search that looks like a phone number ("+91 98765-432", "98765") matches phone numbers too.
PHONE_LIKE = re.compile(r"[\d\s()+.-]+")


@dataclass(frozen=True)
class MessagePage:
    """One page of a message log, newest first, with the ids to page on from (None at either end)."""

    messages: list[Message]
    newer: str | None = None
    older: str | None = None


def messages_search(
    user: User,
    *,
    session_id: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    kind: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    text: str | None = None,
    before: str | None = None,
    after: str | None = None,
    limit: object = None,
) -> MessagePage:
    """The user's messages, newest first, filtered, one page at a time.

    `kind` is a message type (image, poll...). Dates are YYYY-MM-DD, inclusive, in UTC.
    `text` matches the message text, or a phone number when it looks like one.
    `before`/`after` are message ids: the page continues older than, or newer than, that
    message (keyset paging, so deep pages stay fast).
    """
    limit = _limit(limit, default=50, maximum=200)
    statuses = list(MessageStatus)
    query = select(Message).where(Message.user_id == user.id)
    if session_id:
        query = query.where(Message.session_id == session_id)
    if status:
        if status not in statuses:
            raise ValidationError(f"'status' must be one of {', '.join(statuses)}", code="INVALID_FIELD")
        statuses = [status]
    if direction:
        if direction not in (INBOUND, OUTBOUND):
            raise ValidationError("'direction' must be inbound or outbound", code="INVALID_FIELD")
        query = query.where(Message.direction == direction)
        statuses = [s for s in statuses if (s == MessageStatus.RECEIVED) == (direction == INBOUND)]
    if kind:
        if kind not in KINDS:
            raise ValidationError(f"'type' must be one of {', '.join(KINDS)}", code="INVALID_FIELD")
        query = query.where(Message.type == kind)
    start, end = _day(date_from, "from"), _day(date_to, "to")
    if start and end and start > end:
        raise ValidationError("The 'from' date is after the 'to' date", code="INVALID_FIELD")
    if start:
        query = query.where(Message.created_at >= _midnight(start))
    if end:
        query = query.where(Message.created_at < _midnight(end + timedelta(days=1)))
    if text and text.strip():
        query = query.where(_text_matches(text.strip()))

    cursor = _cursor(user, before or after) if before or after else None
    if cursor is not None and not before:
        query = query.where(
            Message.created_at >= cursor[0], or_(Message.created_at > cursor[0], Message.id > cursor[1])
        )
        rows = _newest_first_by_status(query, statuses, limit + 1, ascending=True)
        messages = list(reversed(rows[:limit]))
        has_newer, has_older = len(rows) > limit, True
    else:
        if cursor is not None:
            query = query.where(
                Message.created_at <= cursor[0], or_(Message.created_at < cursor[0], Message.id < cursor[1])
            )
        rows = _newest_first_by_status(query, statuses, limit + 1)
        messages = rows[:limit]
        has_newer, has_older = cursor is not None, len(rows) > limit
    if not messages:
        return MessagePage([])
    return MessagePage(
        messages, newer=messages[0].id if has_newer else None, older=messages[-1].id if has_older else None
    )


def _newest_first_by_status(query, statuses: list[str], limit: int, *, ascending: bool = False) -> list[Message]:
    """The first `limit` rows of `query` by (created_at, id), newest first (or oldest with `ascending`).

    The one index that leads with user_id is (user_id, status, created_at), so a single
    ORDER BY would sort every message the user has. One ordered range scan per status,
    merged, reads at most `limit` rows of each instead.
    """
    if not statuses:
        return []
    order = (Message.created_at, Message.id) if ascending else (Message.created_at.desc(), Message.id.desc())
    positions = query.with_only_columns(Message.created_at, Message.id)
    branches = [select(positions.where(Message.status == s).order_by(*order).limit(limit).subquery()) for s in statuses]
    merged = union_all(*branches).subquery()
    ordered = (merged.c.created_at, merged.c.id) if ascending else (merged.c.created_at.desc(), merged.c.id.desc())
    ids = db.session.scalars(select(merged.c.id).order_by(*ordered).limit(limit)).all()
    rows = db.session.scalars(select(Message).where(Message.id.in_(ids)).options(selectinload(Message.session)))
    by_id = {message.id: message for message in rows}
    return [by_id[message_id] for message_id in ids]


def _day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(f"'{field}' must be a date like 2024-01-31", code="INVALID_FIELD") from exc


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def _text_matches(text: str):
    """The message text contains `text`; or, for something like "+91 98765", the phone number does."""
    matches = Message.body.icontains(text, autoescape=True)
    digits = re.sub(r"\D", "", text)
    if digits and PHONE_LIKE.fullmatch(text):
        matches = or_(matches, Message.phone.contains(digits))
    return matches


def _cursor(user: User, message_id: str) -> tuple[datetime, str] | None:
    """Where one of the user's messages sits in the log: its (created_at, id)."""
    row = db.session.execute(
        select(Message.created_at, Message.id).where(Message.id == message_id, Message.user_id == user.id)
    ).first()
    return tuple(row) if row else None


def messages_failed_count(user: User) -> int:
    """How many of the user's messages failed (an index-only count)."""
    return db.session.scalar(
        select(func.count()).where(Message.user_id == user.id, Message.status == MessageStatus.FAILED)
    )


def message_retry(user: User, message_id: str) -> Message:
    """Send a failed outgoing message again: the same row (and WhatsApp id), queued afresh."""
    message = message_get(user, message_id)
    if message.direction != OUTBOUND or message.status != MessageStatus.FAILED:
        raise _not_retryable(message)
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
    event_emit(message.user_id, "message_status", message.to_status_event())
    from services.stats import stats_refresh_soon

    stats_refresh_soon(message.user_id)
    if message.batch_id:
        from services.bulk import batch_recount

        batch_recount(message.batch_id)
    return message


def _not_retryable(message: Message) -> Conflict:
    return Conflict(
        f"Only failed outgoing messages can be retried; this one is {message.status}",
        error="Message not retryable",
        code="MESSAGE_NOT_RETRYABLE",
    )


# Media a browser may show in place; anything else is only offered as a download.
INLINE_MEDIA = {
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "video/mp4",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
}


@dataclass(frozen=True)
class StoredMedia:
    path: Path
    mimetype: str
    filename: str
    inline: bool


def message_media(message: Message) -> StoredMedia:
    """The file a message carries (sent or received), for its owner; 404 when it has none."""
    payload = message.payload or {}
    media_file = payload.get("media_file")
    path = media_root() / media_file if media_file else None
    if path is None or not path.is_file():
        raise NotFound(
            "This message has no media kept" + (f" ({payload['media_dropped']})" if "media_dropped" in payload else ""),
            error="Media not found",
            code="MEDIA_NOT_FOUND",
        )
    mimetype = payload.get("mimetype") or "application/octet-stream"
    filename = payload.get("filename") or payload.get("fileName") or f"{message.type}-{message.id}"
    return StoredMedia(path, mimetype, filename, mimetype in INLINE_MEDIA)
