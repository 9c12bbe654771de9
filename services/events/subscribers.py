"""Who hears each domain event, listed once, in the order they hear it; connected by create_app.

First each event is written to the event log, unless its change wrote it already, which
gives it the cursor everything after carries (services/events/log.py). Then a request
waiting for a message's outcome is woken. Then the owner is told,
wherever they listen: their Socket.IO room, the session's SSE stream (events declared
`streamed`) and their webhook endpoints (events with a webhook name). Then what follows
from the event: a user's counters, a bulk batch's progress (which publishes an event of
its own). Each hears a list: one event, or a group published at once
(services/events/bus.py: event_publish_many).
"""

from services.events.bus import event_subscribe
from services.events.catalog import DomainEvent, MessageReceived, MessageStatusChanged
from services.events.log import event_log_on_events
from services.events.socketio import socketio_on_events
from services.events.stream import stream_on_events
from services.messaging.bulk import batch_on_message_statuses
from services.messaging.stats import stats_on_events
from services.platform.settled import settled_on_statuses
from services.webhooks.endpoints import webhooks_on_events

# (event class, subscriber)
SUBSCRIBERS = (
    (DomainEvent, event_log_on_events),
    (MessageStatusChanged, settled_on_statuses),
    (DomainEvent, socketio_on_events),
    (DomainEvent, stream_on_events),
    (DomainEvent, webhooks_on_events),
    (MessageReceived, stats_on_events),
    (MessageStatusChanged, stats_on_events),
    (MessageStatusChanged, batch_on_message_statuses),
)


def subscribers_connect() -> None:
    """Subscribe everything above (again is harmless: each is subscribed once)."""
    for kind, subscriber in SUBSCRIBERS:
        event_subscribe(kind, subscriber)
