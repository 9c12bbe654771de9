"""The event log: every event a user can receive, kept EVENT_RETENTION_DAYS under a cursor,
so a consumer that was away pages through what it missed (GET /api/events) and Socket.IO,
SSE and webhooks carry the same cursor.

An event is written in the transaction of the change it reports where the service makes a
group of them (services/messaging/lifecycle.py: messages_status_set, the group commits of
send outcomes and receipts), otherwise as it is published, before anybody hears of it
(services/events/subscribers.py): either way one INSERT for a group, and its id (the cursor)
is known before Socket.IO, SSE or webhooks carry it.

Order: a consumer that asks for a user's events "after" a cursor must never find one
appear later below it. Ids come from one sequence, but two transactions can commit in the
other order than they took their ids; so a transaction that writes a user's events holds
that user's lock (a PostgreSQL advisory lock, released at its commit) from taking the ids
to its commit. SQLite has one writer at a time, which is the same guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, text

from extensions import db
from models import Event, User
from models.base import isoformat, utcnow
from services.errors import ValidationError
from services.events.catalog import EVENTS, DomainEvent
from services.events.cursor import START, cursor_decode, cursor_encode
from services.platform.outages import is_outage, outage_rollback
from services.platform.paging import page_number
from services.sessions.lifecycle import session_get

log = logging.getLogger(__name__)

# The event types a consumer can ask for (their Socket.IO names), in the catalog's order.
TYPES = tuple(event.name for event in EVENTS)
PAGE_DEFAULT = 100
PAGE_MAX = 1000


def events_record(groups: Iterable[tuple[str, Sequence[DomainEvent]]]) -> None:
    """Write groups of events ((user id, events) pairs) in the current transaction, one INSERT
    for them all, and give each its cursor; the caller commits (and then publishes them).

    Call it last before the commit: it flushes what the transaction changed, then takes
    the users' locks, so it never waits for a row while holding one."""
    pending = [(user_id, event) for user_id, events in groups for event in events if event.logged_id is None]
    if not pending:
        return
    db.session.flush()
    if db.session.get_bind().dialect.name == "postgresql":
        for user_id in sorted({user_id for user_id, _ in pending}):  # one order: no deadlock
            db.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"wagate:events:{user_id}"}
            )
    now = utcnow()
    rows = [
        Event(
            user_id=user_id,
            session_id=getattr(event, "session_id", None),
            type=event.name,
            payload=event.to_payload(),
            created_at=now,
        )
        for user_id, event in pending
    ]
    db.session.add_all(rows)
    db.session.flush()
    for row, (_, event) in zip(rows, pending, strict=True):
        event.logged_as(row.id)


def event_log_on_events(user_id: str, events: list[DomainEvent]) -> None:
    """A subscriber, heard first: events not written with their change are written now (one
    transaction for the group). While the database is out of reach they still go out live,
    without a cursor (and the log misses them), which is logged."""
    if all(event.logged_id is not None for event in events):
        return
    try:
        events_record([(user_id, events)])
        db.session.commit()
    except Exception as exc:
        if not is_outage(exc):
            raise
        outage_rollback()
        for event in events:
            event.logged_as(None)
        names = ", ".join(dict.fromkeys(event.name for event in events))
        log.warning("the event log could not keep %s of user %s: %s", names, user_id, exc)


def _after(cursor: str | None, field: str) -> int:
    if cursor is None:
        return 0
    event_id = cursor_decode(cursor)
    if event_id is None:
        raise ValidationError(
            f"'{field}' must be a cursor wagate gave (an event's id, or the `next` of a page)",
            code="INVALID_CURSOR",
            details={"field": field},
        )
    return event_id


def events_page(
    user: User,
    *,
    after: str | None = None,
    types: Sequence[str] | None = None,
    session_id: str | None = None,
    limit: object = None,
    only_sessions: list[str] | None = None,
) -> dict:
    """The user's events after the cursor `after` (from the oldest kept when None), oldest
    first, optionally only `types` (names from TYPES, as the route's schema has them) or one
    session's; `only_sessions` for an API key limited to some. `next` is the cursor to
    ask after next time (the last event's, or `after` itself when there was none)."""
    limit = page_number(limit, default=PAGE_DEFAULT, maximum=PAGE_MAX)
    start = _after(after, "after")
    query = select(Event).where(Event.user_id == user.id, Event.id > start)
    if session_id:
        query = query.where(Event.session_id == session_get(user, session_id).id)
    if only_sessions is not None:
        query = query.where(Event.session_id.in_(only_sessions))
    if types:
        query = query.where(Event.type.in_(types))
    rows = list(db.session.scalars(query.order_by(Event.id).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "events": [event_view(row) for row in rows],
        "next": cursor_encode(rows[-1].id) if rows else (after or START),
        "hasMore": has_more,
    }


def event_view(row: Event) -> dict:
    """An event as the API lists it."""
    return {
        "id": cursor_encode(row.id),
        "type": row.type,
        "sessionId": row.session_id,
        "createdAt": isoformat(row.created_at),
        "data": row.payload,
    }


def session_events_after(user_id: str, session_id: str, after: int, types: Iterable[str], limit: int) -> list[Event]:
    """One session's events of `types` after the event id `after`, oldest first (the SSE stream's)."""
    return list(
        db.session.scalars(
            select(Event)
            .where(
                Event.user_id == user_id, Event.id > after, Event.session_id == session_id, Event.type.in_(list(types))
            )
            .order_by(Event.id)
            .limit(limit)
        )
    )


def events_latest_id(user_id: str, *, at: datetime | None = None) -> int:
    """The id of the user's newest event (of those written by `at`, when given); 0 when none."""
    query = select(func.max(Event.id)).where(Event.user_id == user_id)
    if at is not None:
        query = query.where(Event.created_at <= at)
    return db.session.scalar(query) or 0


def events_prune(before: datetime, *, batch: int) -> int:
    """Delete the events written before `before`, `batch` at a time (one transaction each, so
    neither a long lock nor a huge transaction); how many went."""
    removed = 0
    while True:
        ids = select(Event.id).where(Event.created_at < before).order_by(Event.id).limit(batch)
        count = db.session.execute(
            delete(Event).where(Event.id.in_(ids.scalar_subquery())).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        removed += count
        if count < batch:
            return removed
