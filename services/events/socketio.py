"""Live events to Socket.IO clients, and to webhooks. Each user has a room; nobody else is in it.

Emits go through Flask-SocketIO's Redis message queue when Redis is configured, so the
engine host and workers can emit from their own processes. The same events become
webhook deliveries (services/webhooks/endpoints.py) for the endpoints that want them, and a
session's events are kept for its Server-Sent Events stream (services/events/stream.py).
"""

from extensions import socketio
from services.events.stream import stream_append
from services.webhooks.endpoints import webhooks_on_event


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def event_emit(user_id: str, event: str, payload: dict) -> None:
    socketio.emit(event, payload, to=user_room(user_id))
    stream_append(event, payload)
    webhooks_on_event(user_id, event, payload)
