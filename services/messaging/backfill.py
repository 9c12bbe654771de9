"""History backfill: a chat's older messages asked of the phone, stored as history, with
progress told to the owner (`history_progress`, `history_completed`)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import func, or_, select

from extensions import db, queues
from models import Message, User, WaSession
from models.message import OUTBOUND
from services.contacts.book import LID_SERVER, contact_phone_for_lid
from services.errors import ValidationError
from services.events.bus import event_publish
from services.events.catalog import HistoryCompleted, HistoryProgress
from services.hosts.calls import engine_call
from services.messaging.inbound import message_inbound
from services.platform.phones import recipient_normalize
from services.sessions.lifecycle import session_get, session_require_connected

# What a backfill asked for, kept while its batches come (Redis; a day is plenty).
REQUEST_KEY = "wagate:history:{}"
REQUEST_TTL_SECONDS = 86400
COUNT_MAX = 1000


def chat_normalize(session: WaSession, raw: object, field: str = "chat") -> str:
    """A chat as messages are filed: a phone number, a group id, or a LID's contact's number."""
    if isinstance(raw, str) and raw.strip().endswith(LID_SERVER):
        return contact_phone_for_lid(session, raw, field=field)
    return recipient_normalize(raw, field)


def history_backfill(
    user: User, session_id: str, chat: object, *, count: int | None, since: str | None, notify: bool
) -> dict:
    """Ask the session's phone for a chat's older messages: the `count` before the oldest one
    stored, or all since `since`. They are stored as history as they come; the owner hears
    of the progress, and of each message only with `notify`."""
    session = session_get(user, session_id)
    chat = chat_normalize(session, chat)
    if (count is None) == (since is None):
        raise ValidationError("Give either 'count' or 'since'", code="INVALID_FIELD", details={"field": "count"})
    since_at = _since(since) if since is not None else None
    session_require_connected(session, "history comes from the connected phone")
    request_id = "hist_" + secrets.token_hex(12)
    request = {"chat": chat, "notify": notify, "count": count, "since": since_at and since_at.isoformat()}
    queues.connection.set(REQUEST_KEY.format(request_id), json.dumps(request), ex=REQUEST_TTL_SECONDS)
    seconds = current_app.config["GROUP_CALL_WAIT_SECONDS"]
    engine_call(
        session,
        "history_request",
        chat,
        seconds=seconds,
        refusals={"GROUP_NOT_FOUND": (404, "Group not found")},
        request_id=request_id,
        count=count,
        since=request["since"],
        oldest=_oldest(session, chat),
    )
    return {"requestId": request_id, "sessionId": session.id, **request}


def _since(value: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone); one ahead asks for nothing older."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(
            "'since' must be an ISO 8601 time like 2026-11-23T10:00:00Z",
            code="INVALID_FIELD",
            details={"field": "since"},
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _in_chat(session_id: str, chat: str):
    if chat.endswith("@g.us"):
        return (Message.session_id == session_id) & or_(Message.chat == chat, Message.phone == chat)
    return (Message.session_id == session_id) & (Message.phone == chat) & Message.chat.is_(None)


def _oldest(session: WaSession, chat: str) -> dict | None:
    """The chat's oldest stored message WhatsApp knows (the phone counts back from it)."""
    oldest = db.session.scalar(
        select(Message)
        .where(
            _in_chat(session.id, chat),
            Message.wa_id.is_not(None),
            Message.sent_at.is_not(None) | (Message.direction != OUTBOUND),
        )
        .order_by(Message.created_at)
        .limit(1)
    )
    if oldest is None:
        return None
    at = oldest.created_at if oldest.created_at.tzinfo else oldest.created_at.replace(tzinfo=UTC)
    return {"waId": oldest.wa_id, "fromMe": oldest.direction == OUTBOUND, "timestamp": at.isoformat()}


def history_batch_apply(session_id: str, data: dict) -> None:
    """One batch of a chat's history (an engine's HISTORY event): its messages stored as
    history, then the progress told. A batch WhatsApp pushed unasked is stored too, quietly."""
    session = db.session.get(WaSession, session_id)
    if session is None:
        return
    request_id = data.get("requestId")
    request = _request(request_id) if request_id else None
    notify = bool(request and request.get("notify"))
    stored = 0
    for item in data.get("messages") or []:
        message = message_inbound(
            session_id,
            wa_id=item["waId"],
            sender=item["sender"],
            text=item.get("text") or "",
            at=item["timestamp"],
            kind=item.get("type", "text"),
            details=item.get("details") or ({"chat": data["chat"]} if data["chat"].endswith("@g.us") else None),
            lid=item.get("lid"),
            from_me=bool(item.get("fromMe")),
            history=True,
            notify=notify,
        )
        stored += message is not None
    if request_id is None:
        return
    chat = data["chat"]
    event_publish(
        session.user_id,
        HistoryProgress(
            request_id=request_id,
            session_id=session_id,
            chat=chat,
            stored=stored,
            received=int(data.get("received") or 0),
            requested=request.get("count") if request else None,
        ),
    )
    if data.get("final"):
        total = db.session.scalar(select(func.count()).where(_in_chat(session_id, chat), Message.history.is_(True)))
        event_publish(
            session.user_id,
            HistoryCompleted(
                request_id=request_id,
                session_id=session_id,
                chat=chat,
                received=int(data.get("received") or 0),
                history_total=total,
            ),
        )
        queues.connection.delete(REQUEST_KEY.format(request_id))


def _request(request_id: str) -> dict | None:
    raw = queues.connection.get(REQUEST_KEY.format(request_id))
    return json.loads(raw) if raw else None
