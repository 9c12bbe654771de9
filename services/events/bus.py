"""Publishing domain events (services/events/catalog.py): one call, and each subscriber hears them.

A subscriber takes (user_id, events) and is subscribed to an event class; it hears that
event and every event declared under it (subscribed to DomainEvent, it hears them all).
Subscribers are listed once, in services/events/subscribers.py, and hear an event in the
order they were subscribed. That order is the reason this is not a blinker signal, whose
receivers run in no set order: the owner hears of a message's status before the progress
of its bulk batch that follows from it. A subscriber that raises stops the publish, as
any bug would; those that must not (webhooks) catch their own failures.

A group of events (the outcomes of one send step, a run of receipts) is published at once
with `event_publish_many`: each subscriber in turn hears the whole group, in its order,
in one call (one webhook lookup, one stats refresh, one progress per batch for the
group), so every subscriber still hears each message's
statuses in the order they happened, and the statuses before the batch progress.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.events.catalog import DomainEvent

# A subscriber hears a list of events (one, or a group published at once), in their order.
Subscriber = Callable[[str, list[DomainEvent]], None]

_subscribers: list[tuple[type[DomainEvent], Subscriber]] = []


def event_subscribe(kind: type[DomainEvent], subscriber: Subscriber) -> None:
    """Have `subscriber` hear every `kind` event from now on (once, however often it is asked)."""
    if (kind, subscriber) not in _subscribers:
        _subscribers.append((kind, subscriber))


def event_publish(user_id: str, event: DomainEvent) -> None:
    """Tell `event` to its subscribers; call it after the change it reports is committed."""
    event_publish_many(user_id, [event])


def event_publish_many(user_id: str, events: Sequence[DomainEvent]) -> None:
    """Tell a group of one user's events, in order, to each subscriber in turn; call it after
    the changes they report are committed."""
    for kind, subscriber in _subscribers:
        heard = [event for event in events if isinstance(event, kind)]
        if heard:
            subscriber(user_id, heard)
