"""Publishing a domain event (services/events/catalog.py): one call, and each subscriber hears it.

A subscriber takes (user_id, event) and is subscribed to an event class; it hears that
event and every event declared under it (subscribed to DomainEvent, it hears them all).
Subscribers are listed once, in services/events/subscribers.py, and hear an event in the
order they were subscribed. That order is the reason this is not a blinker signal, whose
receivers run in no set order: the owner hears of a message's status before the progress
of its bulk batch that follows from it. A subscriber that raises stops the publish, as
any bug would; those that must not (webhooks) catch their own failures.
"""

from __future__ import annotations

from collections.abc import Callable

from services.events.catalog import DomainEvent

Subscriber = Callable[[str, DomainEvent], None]

_subscribers: list[tuple[type[DomainEvent], Subscriber]] = []


def event_subscribe(kind: type[DomainEvent], subscriber: Subscriber) -> None:
    """Have `subscriber` hear every `kind` event from now on (once, however often it is asked)."""
    if (kind, subscriber) not in _subscribers:
        _subscribers.append((kind, subscriber))


def event_publish(user_id: str, event: DomainEvent) -> None:
    """Tell `event` to its subscribers; call it after the change it reports is committed."""
    for kind, subscriber in _subscribers:
        if isinstance(event, kind):
            subscriber(user_id, event)
