"""Reading messages: the log's filters and paging, failed ones, one message and its file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, or_, select, union_all
from sqlalchemy.orm import selectinload

from engines.outgoing import KINDS
from extensions import db
from models import Message, MessageStatus, User
from models.base import isoformat
from models.message import INBOUND, OUTBOUND
from services.errors import NotFound, ValidationError
from services.messaging.media import file_name_safe
from services.messaging.outgoing import media_files
from services.platform.paging import page_number
from services.platform.phones import is_group_id, phone_normalize

# The log's view of stalled messages (services/messaging/watchdog.py): found stuck, and still
# where they were found.
STALLED = "stalled"
STALLED_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENT)
# The failed-messages list previews texts as the WAMessenger doc does: "Hello, this is a test mess..."
PREVIEW_LENGTH = 26


def messages_failed(user: User, limit: object, *, only_sessions: list[str] | None = None) -> list[dict]:
    limit = page_number(limit, default=5, maximum=100)
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

    Filters: session, chat (the other party's number, or a group's id), direction, status, type, and
    since/until (ISO 8601 times, since inclusive, until exclusive), as the route's schema
    has them. Pages by `page`, or by `cursor` (the `nextCursor` of the page before), which
    stays right while messages keep arriving.
    """
    limit = page_number(limit, default=50, maximum=200)
    page = page_number(page, default=1, maximum=10**6, field="page")
    query = select(Message).where(Message.user_id == user.id)
    if only_sessions is not None:
        query = query.where(Message.session_id.in_(only_sessions))
    if session_id:
        query = query.where(Message.session_id == session_id)
    if status:
        query = query.where(Message.status == status)
    if direction:
        query = query.where(Message.direction == direction)
    if chat and is_group_id(chat):  # a group's: those sent to it and those its members wrote
        query = query.where(or_(Message.phone == chat.strip(), Message.chat == chat.strip()))
    elif chat:
        query = query.where(Message.phone == phone_normalize(chat, field="chat"))
    if kind:
        query = query.where(Message.type == kind)
    if since:
        query = query.where(Message.created_at >= _instant(since))
    if until:
        query = query.where(Message.created_at < _instant(until))
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


def _instant(value: str) -> datetime:
    """An ISO 8601 time (the schema checked it is one); UTC when it has no offset."""
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
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
    message (keyset paging, so deep pages stay fast). `status` "stalled" is the messages the
    delivery watchdog found stuck that have not moved on since (still queued or sent).
    """
    limit = page_number(limit, default=50, maximum=200)
    statuses = list(MessageStatus)
    query = select(Message).where(Message.user_id == user.id)
    if session_id:
        query = query.where(Message.session_id == session_id)
    if status == STALLED:
        query = query.where(Message.stalled_at.is_not(None))
        statuses = list(STALLED_STATUSES)
    elif status:
        if status not in statuses:
            choices = ", ".join([*statuses, STALLED])
            raise ValidationError(f"'status' must be one of {choices}", code="INVALID_FIELD")
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


def messages_stalled_count(user: User) -> int:
    """How many of the user's messages are stalled (found stuck, not moved on since)."""
    return db.session.scalar(
        select(func.count()).where(
            Message.user_id == user.id, Message.status.in_(STALLED_STATUSES), Message.stalled_at.is_not(None)
        )
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
    file: Path | BinaryIO  # a path, or an open file at its start (the response closes it)
    size: int
    mimetype: str
    filename: str
    inline: bool


def message_media(message: Message) -> StoredMedia:
    """The file a message carries (sent or received), for its owner; 404 when it has none."""
    payload = message.payload or {}
    media_file = payload.get("media_file")
    kept = media_files().file_open(media_file) if media_file else None
    if kept is None:
        raise NotFound(
            "This message has no media kept" + (f" ({payload['media_dropped']})" if "media_dropped" in payload else ""),
            error="Media not found",
            code="MEDIA_NOT_FOUND",
        )
    mimetype = payload.get("mimetype") or "application/octet-stream"
    # Cleaned again: a message stored before names were cleaned keeps the name it came with.
    filename = (
        file_name_safe(payload.get("filename") or payload.get("fileName") or "") or f"{message.type}-{message.id}"
    )
    return StoredMedia(*kept, mimetype, filename, mimetype in INLINE_MEDIA)
