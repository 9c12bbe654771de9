"""Which session sends a message whose request names none (as Wamux's API takes them)."""

from __future__ import annotations

from models import ApiKey, User, WaSession
from models.wa_session import SessionStatus
from services.errors import ApiError, Conflict
from services.sessions.lifecycle import session_get, session_list


def session_for_send(user: User, key: ApiKey | None, session_id: str | None) -> WaSession:
    """The session a send goes from: the one named; else the key's, when the key is bound to
    one session; else the account's only connected session (or its only session, whose
    send is then refused as not connected).

    400 SESSION_REQUIRED when that leaves a choice to make; 409 SESSION_NOT_CONNECTED when
    the account has no session at all. A named session that is not the user's is 404.
    """
    if session_id:
        return session_get(user, session_id)
    if key is not None and len(key.allowed_session_ids or []) == 1:
        return session_get(user, key.allowed_session_ids[0])
    only = list(key.allowed_session_ids) if key is not None and key.is_restricted else None
    sessions = session_list(user, only=only)
    connected = [session for session in sessions if session.status == SessionStatus.CONNECTED]
    if len(connected) == 1:
        return connected[0]
    if not connected and len(sessions) == 1:
        return sessions[0]
    if not sessions:
        raise Conflict(
            "You have no WhatsApp session to send from: create one and scan its QR code first",
            error="Session not connected",
            code="SESSION_NOT_CONNECTED",
        )
    which = f"{len(connected)} connected sessions" if connected else f"{len(sessions)} sessions, none connected"
    raise ApiError(
        f"You have {which}: say which one sends with 'sessionId'",
        error="Session required",
        code="SESSION_REQUIRED",
        status=400,
        details={"field": "sessionId"},
    )
