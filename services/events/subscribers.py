"""Who hears each domain event, listed once, in the order they hear it; connected by create_app.

The owner is told wherever they listen: their Socket.IO room, the session's SSE stream
(events declared `streamed`) and their webhook endpoints (events with a webhook name).
"""

from services.events.bus import event_subscribe
from services.events.catalog import DomainEvent
from services.events.socketio import socketio_on_event
from services.events.stream import stream_on_event
from services.webhooks.endpoints import webhooks_on_event

SUBSCRIBERS = (
    (DomainEvent, socketio_on_event),
    (DomainEvent, stream_on_event),
    (DomainEvent, webhooks_on_event),
)


def subscribers_connect() -> None:
    """Subscribe everything above (again is harmless: each is subscribed once)."""
    for kind, subscriber in SUBSCRIBERS:
        event_subscribe(kind, subscriber)
