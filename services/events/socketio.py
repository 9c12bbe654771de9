"""Domain events to Socket.IO clients. Each user has a room; nobody else is in it.

Emits go through Flask-SocketIO's Redis message queue when Redis is configured, so the
engine host and workers can emit from their own processes.
"""

from extensions import socketio
from services.events.catalog import DomainEvent


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def socketio_on_event(user_id: str, event: DomainEvent) -> None:
    """Emit every event to its owner's room, under its declared name."""
    socketio.emit(event.name, event.to_payload(), to=user_room(user_id))
