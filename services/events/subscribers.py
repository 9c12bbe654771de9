"""Who hears each domain event, listed once, in the order they hear it; connected by create_app.

First the owner is told, wherever they listen: their Socket.IO room, the session's SSE
stream (events declared `streamed`) and their webhook endpoints (events with a webhook
name). Then what follows from the event: a user's counters, a bulk batch's progress
(which publishes an event of its own).
"""

from services.events.bus import event_subscribe
from services.events.catalog import DomainEvent, MessageReceived, MessageStatusChanged
from services.events.socketio import socketio_on_event
from services.events.stream import stream_on_event
from services.messaging.bulk import batch_on_message_status
from services.messaging.stats import stats_on_event
from services.webhooks.endpoints import webhooks_on_event

SUBSCRIBERS = (
    (DomainEvent, socketio_on_event),
    (DomainEvent, stream_on_event),
    (DomainEvent, webhooks_on_event),
    (MessageReceived, stats_on_event),
    (MessageStatusChanged, stats_on_event),
    (MessageStatusChanged, batch_on_message_status),
)


def subscribers_connect() -> None:
    """Subscribe everything above (again is harmless: each is subscribed once)."""
    for kind, subscriber in SUBSCRIBERS:
        event_subscribe(kind, subscriber)
