"""Domain events to Socket.IO clients. Each user has a room; nobody else is in it.

Legacy single-session scripts connect without credentials (as the WAMessenger API's own
example does); from a trusted network they join the legacy room, which hears the legacy
default session's events and nothing else.

Emits go through Flask-SocketIO's Redis message queue when Redis is configured, so the
engine host and workers can emit from their own processes.
"""

from extensions import db, socketio
from models import User
from services.accounts.legacy import legacy_owner_id, legacy_session
from services.events.catalog import DomainEvent

LEGACY_ROOM = "legacy"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def socketio_on_event(user_id: str, event: DomainEvent) -> None:
    """Emit every event to its owner's room, under its declared name (and the legacy default
    session's to the legacy room too)."""
    payload = event.to_payload()
    socketio.emit(event.name, payload, to=user_room(user_id))
    if user_id == legacy_owner_id() and _is_legacy_session(user_id, payload.get("sessionId")):
        socketio.emit(event.name, payload, to=LEGACY_ROOM)


def _is_legacy_session(user_id: str, session_id: str | None) -> bool:
    session = legacy_session(db.session.get(User, user_id)) if session_id else None
    return session is not None and session.id == session_id
