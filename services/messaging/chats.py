"""A session's chats: everyone and every group it has messages with, newest first, each with
its last message and how many of the contact's messages came after the session's last reply."""

from __future__ import annotations

from sqlalchemy import func, select

from extensions import db
from models import Contact, Message, User
from models.message import INBOUND, OUTBOUND
from services.platform.paging import page_number
from services.sessions.lifecycle import session_get


def chats_list(user: User, session_id: str, *, page=None, limit=None) -> dict:
    """One page of the session's chats, the most recently active first."""
    session = session_get(user, session_id)
    limit = page_number(limit, default=50, maximum=200)
    page = page_number(page, default=1, maximum=10**6, field="page")
    key = func.coalesce(Message.chat, Message.phone).label("chat")
    mine = (Message.user_id == user.id) & (Message.session_id == session.id)
    grouped = select(key, func.max(Message.created_at).label("last_at")).where(mine).group_by(key).subquery()
    total = db.session.scalar(select(func.count()).select_from(grouped))
    rows = db.session.execute(
        select(grouped.c.chat)
        .order_by(grouped.c.last_at.desc(), grouped.c.chat)
        .limit(limit)
        .offset((page - 1) * limit)
    ).all()
    chats = [_chat_view(session.id, mine, row.chat) for row in rows]
    return {"chats": chats, "total": total, "page": page, "limit": limit}


def _chat_view(session_id: str, mine, chat: str) -> dict:
    in_chat = mine & (func.coalesce(Message.chat, Message.phone) == chat)
    last = db.session.scalar(
        select(Message).where(in_chat).order_by(Message.created_at.desc(), Message.id.desc()).limit(1)
    )
    replied = db.session.scalar(select(func.max(Message.created_at)).where(in_chat, Message.direction == OUTBOUND))
    waiting = select(func.count()).where(in_chat, Message.direction == INBOUND, Message.history.is_(False))
    if replied is not None:
        waiting = waiting.where(Message.created_at > replied)
    contact = db.session.scalar(select(Contact).where(Contact.session_id == session_id, Contact.phone == chat))
    return {
        "chat": chat,
        "isGroup": chat.endswith("@g.us"),
        "name": contact.display_name if contact is not None else None,
        "lid": contact.lid if contact is not None else None,
        "unreadCount": db.session.scalar(waiting),
        "lastMessage": last.to_dict(),
    }
