"""Each session's recent live events, kept in a Redis stream for Server-Sent Events clients.

Every event declared `streamed` (services/events/catalog.py) is appended to its session's
stream (`wagate:stream:<sessionId>`), trimmed to the last STREAM_RETENTION_SECONDS.
Stream entry ids ("1732350000123-0") are the SSE event ids, so a client that reconnects
with `Last-Event-ID` gets exactly what it missed, from any web process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app

from extensions import queues
from services.events.catalog import EVENTS, DomainEvent

STREAM_KEY = "wagate:stream:{}"
# The names of the events a stream carries (its `event:` lines).
STREAMED = frozenset(event.name for event in EVENTS if event.streamed)


@dataclass(frozen=True)
class StreamEvent:
    id: str
    event: str
    data: str  # JSON

    def encode(self) -> str:
        return f"id: {self.id}\nevent: {self.event}\ndata: {self.data}\n\n"


def stream_on_events(user_id: str, events: list[DomainEvent]) -> None:
    """Keep a group's streamed events in their sessions' streams, in order, in one round trip."""
    streamed = [event for event in events if event.streamed]
    if not streamed:
        return
    retention = current_app.config["STREAM_RETENTION_SECONDS"]
    oldest = f"{int((time.time() - retention) * 1000)}-0"
    with queues.connection.pipeline(transaction=False) as pipe:
        for event in streamed:
            data = json.dumps(event.to_payload(), separators=(",", ":"))
            pipe.xadd(STREAM_KEY.format(event.session_id), {"event": event.name, "data": data}, minid=oldest)
        for session_id in dict.fromkeys(event.session_id for event in streamed):
            pipe.expire(STREAM_KEY.format(session_id), int(retention) + 60)
        pipe.execute()


def stream_position(last_event_id: str | None) -> str:
    """Where a stream starts: after `Last-Event-ID` (an id like 1732350000123-0, as the
    stream route's schema has it), or from now ("$") for a new client."""
    return last_event_id or "$"


def stream_latest_id(session_id: str) -> str:
    """The id of the newest event kept (0-0 when none), to start a new client from."""
    entries = queues.connection.xrevrange(STREAM_KEY.format(session_id), count=1)
    return entries[0][0].decode() if entries else "0-0"


def stream_read(session_id: str, after: str, wait_seconds: float) -> list[StreamEvent]:
    """Events after the id `after`, waiting up to `wait_seconds` for the first.

    Redis is asked to block for at most half of the connection's socket timeout at a time
    (REDIS_SOCKET_TIMEOUT_SECONDS): a longer block would be taken for a dead server."""
    deadline = time.monotonic() + wait_seconds
    slice_seconds = current_app.config["REDIS_SOCKET_TIMEOUT_SECONDS"] / 2
    while True:
        block = min(slice_seconds, deadline - time.monotonic())
        reply = queues.connection.xread(
            {STREAM_KEY.format(session_id): after}, count=100, block=max(1, int(block * 1000))
        )
        if reply or time.monotonic() >= deadline:
            break
    return [
        StreamEvent(entry_id.decode(), fields[b"event"].decode(), fields[b"data"].decode())
        for _, entries in reply or []
        for entry_id, fields in entries
    ]


def stream_events(session_id: str, position: str, *, heartbeat_seconds: float) -> Iterator[str]:
    """The SSE body from `position` (see stream_position): a retry hint, then events as they
    come, with a comment line as heartbeat while nothing happens."""
    if position == "$":
        position = stream_latest_id(session_id)
    yield "retry: 3000\n\n"
    while True:
        events = stream_read(session_id, position, heartbeat_seconds)
        if not events:
            yield ": heartbeat\n\n"
            continue
        for event in events:
            yield event.encode()
        position = events[-1].id
