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


def socketio_on_events(user_id: str, events: list[DomainEvent]) -> None:
    """Emit each event to its owner's room, under its declared name, with its cursor as
    `eventId` (and the legacy default session's to the legacy room too): one emit each, the
    legacy session looked up once."""
    legacy_id = _legacy_session_id(user_id) if user_id == legacy_owner_id() else None
    for event in events:
        payload = event.to_live()
        socketio.emit(event.name, payload, to=user_room(user_id))
        if legacy_id is not None and payload.get("sessionId") == legacy_id:
            socketio.emit(event.name, payload, to=LEGACY_ROOM)


def _legacy_session_id(user_id: str) -> str | None:
    session = legacy_session(db.session.get(User, user_id))
    return session.id if session is not None else None
