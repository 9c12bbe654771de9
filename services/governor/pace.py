"""Each session's pace, queue and health as the API and dashboard show them, and the
automatic pause that keeps a number from being banned (the queue itself: services/governor.py).

Health: after every send the session's last GOVERNOR_WINDOW outcomes are looked at. Once
there are GOVERNOR_MIN_SAMPLE of them, sending pauses when more than
GOVERNOR_MAX_FAILURE_RATE of them failed or more than GOVERNOR_MAX_UNKNOWN_RATE went to
numbers not on WhatsApp (a list bought or scraped: the fastest way to be reported), or when
more than GOVERNOR_MAX_COLD_PER_DAY messages in a day went to people who never wrote to the
session. WhatsApp's own warnings (a temporary ban, the device unlinked, the account opened
elsewhere) pause it at once. Only the owner resumes it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import func, select

from extensions import db, queues
from jobs import engine as engine_jobs
from models import Message, MessageStatus, User, WaSession
from models.base import isoformat, utcnow
from models.message import INBOUND, OUTBOUND
from services.errors import Conflict
from services.events.bus import event_publish
from services.events.catalog import SessionPaused, SessionResumed
from services.governor.queue import PACE_FIELDS, Pace, SendQueue, field_camel, pace_changes, pace_from
from services.hosts.calls import engine_enqueue
from services.sessions.lifecycle import session_get

log = logging.getLogger(__name__)
UNKNOWN_CODES = frozenset({"NUMBER_NOT_ON_WHATSAPP"})
# Engine signals that pause sending at once (engines report them on ERROR/DISCONNECTED events).
PAUSE_SIGNALS = {
    "temporary_ban": "WhatsApp temporarily banned this number",
    "logged_out": "the phone unlinked this device",
    "stream_replaced": "this WhatsApp account was opened somewhere else",
}


def pace_defaults() -> Pace:
    config = current_app.config
    return Pace(
        min_gap_seconds=config["PACE_MIN_GAP_SECONDS"],
        jitter_seconds=config["PACE_JITTER_SECONDS"],
        per_minute=config["PACE_PER_MINUTE"],
        per_day=config["PACE_PER_DAY"],
        warmup=tuple(config["PACE_WARMUP"]),
        typing=config["PACE_TYPING"],
    )


def session_pace(session: WaSession) -> Pace:
    return pace_from(pace_defaults(), session.pace)


def send_queue(session_id: str) -> SendQueue:
    return SendQueue(queues.connection, session_id)


def pace_view(session: WaSession, now: float | None = None) -> dict:
    """The session's pace settings and where its queue stands: when the next message may go
    and what it waits for (`paused`, a pace rule, or `scheduled`: only later messages wait)."""
    now = time.time() if now is None else now
    pace = session_pace(session)
    queue = send_queue(session.id)
    scheduled = db.session.scalar(
        select(func.count(Message.id)).where(
            Message.session_id == session.id, Message.status == MessageStatus.SCHEDULED
        )
    )
    depth = queue.depth()
    due = queue.earliest_later()
    next_at = waiting_for = None
    if depth and session.paused_at is not None:
        waiting_for = "paused"
    elif queue.lanes() or (due is not None and due <= now):
        next_at, waiting_for = queue.blocked_until(pace, now, paired_at=session.paired_at) or (now, None)
    elif due is not None:
        next_at, waiting_for = due, "scheduled"
    return {
        "sessionId": session.id,
        "pace": pace.to_dict(),
        "queue": {
            "depth": depth,
            "scheduled": scheduled,
            "lanes": queue.lanes(),
            "nextSendAt": _iso(next_at),
            "waitingFor": waiting_for,
            "sentLastMinute": queue.sent_since(now - 60),
            "sentToday": queue.sent_today(pace, now),
            "todayCap": pace.day_cap(session.paired_at, now),
            "warmupDay": pace.warmup_day(session.paired_at, now),
        },
        "paused": session.paused_at is not None,
        "pausedAt": isoformat(session.paused_at),
        "pausedReason": session.paused_reason,
    }


def _iso(timestamp: float | None) -> str | None:
    return isoformat(datetime.fromtimestamp(timestamp, UTC)) if timestamp is not None else None


def pace_show(user: User, session_id: str) -> dict:
    return pace_view(session_get(user, session_id))


def pace_update(user: User, session_id: str, body: dict) -> dict:
    """Change some pace settings (camelCase); `null` sets a setting back to its default
    (for quietStart/quietEnd it means no quiet hours)."""
    session = session_get(user, session_id)
    by_camel = {field_camel(name): name for name in PACE_FIELDS}
    resets = {by_camel[key] for key, value in body.items() if value is None and key in by_camel} - {
        "quiet_start",
        "quiet_end",
    }
    changes = pace_changes({key: value for key, value in body.items() if by_camel.get(key) not in resets})
    stored = {name: value for name, value in (session.pace or {}).items() if name not in resets} | changes
    # No quiet hours (null) is their default too: only what differs from the defaults is kept.
    session.pace = {name: value for name, value in stored.items() if value is not None} or None
    db.session.commit()
    _nudge(session)
    return pace_view(session)


def pace_set(user: User, session_id: str, settings: dict) -> dict:
    """Set every pace setting at once (the dashboard's form, camelCase). A value equal to the
    default is stored as "the default", so the session follows the server's configuration."""
    defaults = pace_defaults().to_dict()
    return pace_update(
        user, session_id, {key: None if value == defaults.get(key) else value for key, value in settings.items()}
    )


def pace_reset(user: User, session_id: str) -> dict:
    """Every pace setting back to the server's defaults (and no quiet hours)."""
    return pace_update(user, session_id, {field_camel(name): None for name in PACE_FIELDS})


def sessions_paused(user: User) -> list[WaSession]:
    """The user's sessions whose sending is paused, longest paused first."""
    return list(
        db.session.scalars(
            select(WaSession)
            .where(WaSession.user_id == user.id, WaSession.paused_at.is_not(None))
            .order_by(WaSession.paused_at)
        )
    )


def session_pause(session: WaSession, reason: str) -> bool:
    """Stop the session's sending until its owner resumes it; tell the owner. False if paused already."""
    if session.paused_at is not None:
        return False
    session.paused_at, session.paused_reason = utcnow(), reason[:500]
    db.session.commit()
    log.warning("session %s paused: %s", session.id, reason)
    event_publish(
        session.user_id, SessionPaused(session_id=session.id, reason=session.paused_reason, paused_at=session.paused_at)
    )
    return True


def session_resume(user: User, session_id: str) -> dict:
    session = session_get(user, session_id)
    if session.paused_at is None:
        raise Conflict("This session's sending is not paused", code="NOT_PAUSED")
    session.paused_at = session.paused_reason = None
    db.session.commit()
    send_queue(session.id).outcomes_clear()  # a fresh start: old failures do not pause it again
    event_publish(session.user_id, SessionResumed(session_id=session.id))
    _nudge(session)
    return pace_view(session)


def health_after_send(session: WaSession, error_code: str | None) -> None:
    """Look at the session's recent sends; pause it if they show a number at risk."""
    health_after_sends(session, [error_code])


def health_after_sends(session: WaSession, error_codes: list[str | None]) -> None:
    """The same after a group of sends (their outcomes in order, recorded at once): the
    session pauses if its outcomes showed a number at risk after any of them."""
    if not error_codes:
        return
    config = current_app.config
    windows = send_queue(session.id).outcome_many(error_codes, config["GOVERNOR_WINDOW"])
    for outcomes in windows:
        if len(outcomes) < config["GOVERNOR_MIN_SAMPLE"]:
            continue
        failed = [code for code in outcomes if code != "ok"]
        unknown = [code for code in failed if code in UNKNOWN_CODES]
        if len(unknown) / len(outcomes) > config["GOVERNOR_MAX_UNKNOWN_RATE"]:
            session_pause(
                session,
                f"{len(unknown)} of the last {len(outcomes)} messages went to numbers not on WhatsApp. "
                "Check the list before resuming: sending to unknown numbers gets numbers banned.",
            )
            return
        if len(failed) / len(outcomes) > config["GOVERNOR_MAX_FAILURE_RATE"]:
            session_pause(session, f"{len(failed)} of the last {len(outcomes)} messages failed.")
            return
    cold_limit = config["GOVERNOR_MAX_COLD_PER_DAY"]
    sent = error_codes.count(None)
    if cold_limit and sent:
        # Each send adds at most one cold message, so after a count of `cold` the database is
        # asked again only once `cold_limit - cold` more have gone: the pause comes at the
        # same send as if it counted every time (a group's sends are counted together).
        queue = send_queue(session.id)
        room = queue.cold_room(cold_limit, spent=sent)
        if room is not None and room >= 0:
            return
        cold = cold_messages_today(session)
        queue.cold_room_set(cold_limit, cold_limit - cold)
        if cold > cold_limit:
            session_pause(
                session,
                f"{cold} messages today went to people who never wrote to this number "
                f"(more than {cold_limit}); many unanswered messages get a number reported.",
            )


def cold_messages_today(session: WaSession) -> int:
    """Messages sent in the last 24 hours to people who have never written to the session."""
    since = datetime.fromtimestamp(time.time() - 86400, UTC)
    wrote = select(Message.phone).where(Message.session_id == session.id, Message.direction == INBOUND)
    return db.session.scalar(
        select(func.count(Message.id)).where(
            Message.session_id == session.id,
            Message.direction == OUTBOUND,
            Message.sent_at >= since,
            Message.phone.not_in(wrote),
        )
    )


def engine_signal_pause(session: WaSession, signal: str | None, reason: str | None) -> None:
    if signal in PAUSE_SIGNALS:
        session_pause(session, f"Paused because {PAUSE_SIGNALS[signal]}: {reason or 'no details'}")


def projected_seconds(
    session: WaSession, pending: int, *, floor_seconds: float = 0.0, now: float | None = None
) -> float:
    """About how long `pending` more messages of one lane (a batch) take at the session's
    pace: its gap (or the floor, the longer), shared in turn with the other lanes, within the
    per-minute ceiling, and past today's ceiling into the next days."""
    if pending <= 0:
        return 0.0
    now = time.time() if now is None else now
    pace = session_pace(session)
    queue = send_queue(session.id)
    seconds = pending * seconds_per_message(session, floor_seconds=floor_seconds)
    blocked = queue.blocked_until(pace, now, paired_at=session.paired_at)
    if blocked is not None:
        seconds += blocked[0] - now
    left_today = max(pace.day_cap(session.paired_at, now) - queue.sent_today(pace, now), 0)
    if pending > left_today:
        extra_days = -(-(pending - left_today) // pace.per_day)
        seconds = max(seconds, (pace.next_day_start(now) - now) + (extra_days - 1) * 86400)
    return seconds


def seconds_per_message(session: WaSession, *, floor_seconds: float = 0.0) -> float:
    """About how often one lane (a batch) gets a message out at the session's pace: its gap
    (or the floor, the longer) on average, within the per-minute ceiling, shared in turn
    with the other lanes."""
    pace = session_pace(session)
    gap = max(pace.min_gap_seconds + pace.jitter_seconds / 2, 60 / pace.per_minute)
    return max(floor_seconds, gap * max(send_queue(session.id).lanes(), 1))


def _nudge(session: WaSession) -> None:
    """Have the engine host that owns the session look at its queue again."""
    engine_enqueue(session, engine_jobs.engine_queue_nudge, session.id)
