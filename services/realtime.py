"""Live events to Socket.IO clients. Each user has a room; nobody else is in it.

Emits go through Flask-SocketIO's Redis message queue when Redis is configured, so the
engine host and workers can emit from their own processes. A session's events are also
kept for its Server-Sent Events stream (services/event_stream.py).
"""

from extensions import socketio
from services.event_stream import stream_append


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def event_emit(user_id: str, event: str, payload: dict) -> None:
    socketio.emit(event, payload, to=user_room(user_id))
    stream_append(event, payload)
