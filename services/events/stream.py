"""A session's live events for Server-Sent Events clients, resumable with `Last-Event-ID`.

What a stream carries is the event log's (services/events/log.py): the session's events
declared `streamed` (services/events/catalog.py), in the log's order, each under its cursor
as the SSE id. So a client that reconnects with `Last-Event-ID` gets exactly what it missed
while the log keeps it (EVENT_RETENTION_DAYS), in order, none twice, from any web process.

Each streamed event is also appended to its session's Redis stream (`wagate:stream:<sessionId>`,
trimmed to the last STREAM_RETENTION_SECONDS) after it is in the log: a stream waits on it
(XREAD) to know when to read the log again. An id of that Redis stream ("1732350000123-0"),
which streams sent as their SSE ids before the log, still resumes: from that moment.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app

from extensions import db, queues
from models import Event
from services.events.catalog import EVENTS, DomainEvent
from services.events.cursor import cursor_decode, cursor_encode
from services.events.log import events_latest_id, session_events_after

STREAM_KEY = "wagate:stream:{}"
# The names of the events a stream carries (its `event:` lines).
STREAMED = frozenset(event.name for event in EVENTS if event.streamed)
# An id of the Redis stream, as streams sent them before the event log.
REDIS_ID = re.compile(r"^([0-9]{1,15})-[0-9]{1,10}$")
READ_AT_ONCE = 100
# The last moment a datetime can hold (9999-12-31): an id's time past it means "up to now".
LATEST_MOMENT_MS = 253_402_300_799_000


@dataclass(frozen=True)
class StreamEvent:
    id: str
    event: str
    data: str  # JSON

    @classmethod
    def of(cls, row: Event) -> StreamEvent:
        data = {**row.payload, "eventId": cursor_encode(row.id)}
        return cls(cursor_encode(row.id), row.type, json.dumps(data, separators=(",", ":")))

    def encode(self) -> str:
        return f"id: {self.id}\nevent: {self.event}\ndata: {self.data}\n\n"


def stream_on_events(user_id: str, events: list[DomainEvent]) -> None:
    """Tell the streams of a group's sessions that the log has news, in one round trip."""
    streamed = [event for event in events if event.streamed]
    if not streamed:
        return
    retention = current_app.config["STREAM_RETENTION_SECONDS"]
    oldest = f"{int((time.time() - retention) * 1000)}-0"
    with queues.connection.pipeline(transaction=False) as pipe:
        for event in streamed:
            data = json.dumps(event.to_live(), separators=(",", ":"))
            pipe.xadd(STREAM_KEY.format(event.session_id), {"event": event.name, "data": data}, minid=oldest)
        for session_id in dict.fromkeys(event.session_id for event in streamed):
            pipe.expire(STREAM_KEY.format(session_id), int(retention) + 60)
        pipe.execute()


def stream_position(user_id: str, last_event_id: str | None) -> int:
    """The event id a stream starts after: `Last-Event-ID` (a cursor, or an id of the Redis
    stream, as the stream route's schema has it), or the user's newest event for a new client."""
    if last_event_id:
        event_id = cursor_decode(last_event_id)
        if event_id is not None:
            return event_id
        milliseconds = int(REDIS_ID.match(last_event_id).group(1))
        moment = datetime.fromtimestamp(min(milliseconds, LATEST_MOMENT_MS) / 1000, tz=UTC)
        return events_latest_id(user_id, at=moment)
    return events_latest_id(user_id)


def stream_latest_id(session_id: str) -> str:
    """The id of the newest entry of the session's Redis stream (0-0 when none)."""
    entries = queues.connection.xrevrange(STREAM_KEY.format(session_id), count=1)
    return entries[0][0].decode() if entries else "0-0"


def stream_read(session_id: str, after: str, wait_seconds: float) -> list[StreamEvent]:
    """The Redis stream's entries after the id `after`, waiting up to `wait_seconds` for the
    first (under their Redis ids: the Wamux dialect's stream sends those).

    Redis is asked to block for at most half of the connection's socket timeout at a time
    (REDIS_SOCKET_TIMEOUT_SECONDS): a longer block would be taken for a dead server."""
    deadline = time.monotonic() + wait_seconds
    slice_seconds = current_app.config["REDIS_SOCKET_TIMEOUT_SECONDS"] / 2
    while True:
        block = min(slice_seconds, deadline - time.monotonic())
        reply = queues.connection.xread(
            {STREAM_KEY.format(session_id): after}, count=READ_AT_ONCE, block=max(1, int(block * 1000))
        )
        if reply or time.monotonic() >= deadline:
            break
    return [
        StreamEvent(entry_id.decode(), fields[b"event"].decode(), fields[b"data"].decode())
        for _, entries in reply or []
        for entry_id, fields in entries
    ]


def _streamed_types() -> set[str]:
    """The names of the events declared `streamed`, those declared outside the catalog's list too."""
    names, kinds = set(), [DomainEvent]
    while kinds:
        kind = kinds.pop()
        kinds.extend(kind.__subclasses__())
        if kind.streamed:
            names.add(kind.name)
    return names


def _read(user_id: str, session_id: str, after: int) -> list[StreamEvent]:
    rows = session_events_after(user_id, session_id, after, _streamed_types(), READ_AT_ONCE)
    events = [StreamEvent.of(row) for row in rows]
    db.session.close()  # a stream lasts: it holds no connection between reads
    return events


def stream_events(user_id: str, session_id: str, after: int, *, heartbeat_seconds: float) -> Iterator[str]:
    """The SSE body from the event id `after` (see stream_position): a retry hint, then
    events as they come, with a comment line as heartbeat while nothing happens.

    The Redis stream's position is taken before the log is read, so an event written after
    a read always has its entry after that position, and wakes the next read."""
    position = stream_latest_id(session_id)
    yield "retry: 3000\n\n"
    while True:
        events = _read(user_id, session_id, after)
        for event in events:
            yield event.encode()
        if events:
            after = cursor_decode(events[-1].id)
            if len(events) == READ_AT_ONCE:
                continue
        entries = stream_read(session_id, position, heartbeat_seconds)
        if not entries:
            yield ": heartbeat\n\n"
        else:
            position = entries[-1].id
