"""What an engine event means for a session: stored, then pushed to its owner."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from engines import EngineEvent, EngineEventKind
from extensions import db
from models import SessionStatus, WaSession
from models.base import utcnow
from services.contacts.book import contacts_sync
from services.events.bus import event_publish
from services.events.catalog import (
    DomainEvent,
    SessionConnected,
    SessionDisconnected,
    SessionQr,
    SessionReconnecting,
    SessionStatusChanged,
)
from services.governor.pace import engine_signal_pause, health_after_sends
from services.hosts.leases import lease_lock
from services.messaging.backfill import history_batch_apply
from services.messaging.inbound import message_inbound
from services.messaging.lifecycle import Receipt, SendSettled, messages_settle
from services.platform.logs import log_context
from services.platform.metrics import engine_reconnecting, sends_settled
from services.sessions.presence import presence_seen
from services.sessions.qr import qr_data_url

log = logging.getLogger(__name__)


# What the neonize engine reports about an inbound message beyond its text.
NEONIZE_DETAILS = (
    "chat",
    "isGroup",
    "pushName",
    "mimetype",
    "fileName",
    "location",
    "senderLid",
    "quotedId",
    "reaction",
    "poll",
    "pollVote",
)


def _clear_qr(session: WaSession) -> None:
    session.qr_code = session.qr_payload = session.qr_expires_at = None


@dataclass
class SendsSettled:
    """A send line's group of outcomes, for the event thread to write with whatever else is
    waiting (other lines' outcomes, receipts); the line waits for `written`."""

    session_id: str
    sends: list[SendSettled]
    codes: list[str | None]  # the settled sends' error codes (None: sent), for the session's health
    written: threading.Event = field(default_factory=threading.Event)


def engine_settle_apply(items: list) -> None:
    """A run of receipt events and send lines' outcomes, written in one transaction whatever
    sessions they concern (services/messaging/lifecycle.py: messages_settle); then each
    session's health is looked at once for its sends."""
    sends: list[SendSettled] = []
    receipts: list[tuple[str, Receipt]] = []
    codes: dict[str, list[str | None]] = {}
    for item in items:
        if isinstance(item, SendsSettled):
            sends.extend(item.sends)
            codes.setdefault(item.session_id, []).extend(item.codes)
        else:
            data = item.data
            receipts.append((item.session_id, Receipt(data["waId"], data["status"], data["timestamp"])))
    messages_settle(sends, receipts)
    sends_settled((send.status, send.error_code) for send in sends if send.status is not None)
    for session_id, session_codes in codes.items():
        session = db.session.get(WaSession, session_id)
        if session is not None and session_codes:
            health_after_sends(session, session_codes)


# Where the engine host notes, on a session's event, the generation of the lease it held
# when the event came (None: it held none).
LEASE_STAMP = "_lease"


def engine_event_apply(event: EngineEvent, host_id: str | None = None) -> None:
    """Store an engine event and publish what it means. A change of the session's state
    from an engine host (`host_id`) is applied only while that host still holds the
    session under the lease stamped on the event: a host that lost it (paused, cut off,
    handed the session over) cannot mark the session as another host's connection sees it."""
    with log_context(session_id=event.session_id):
        _engine_event_apply(event, host_id)


def _engine_event_apply(event: EngineEvent, host_id: str | None) -> None:
    if event.kind == EngineEventKind.RECEIPT:
        engine_settle_apply([event])
        return
    if event.kind == EngineEventKind.PRESENCE:
        presence_seen(event.session_id, event.data)
        return
    if event.kind == EngineEventKind.CONTACTS:
        contacts_sync(event.session_id, event.data["contacts"])
        return
    if event.kind == EngineEventKind.HISTORY:
        history_batch_apply(event.session_id, event.data)
        return
    if event.kind == EngineEventKind.MESSAGE:
        data = event.data
        message_inbound(
            event.session_id,
            wa_id=data["waId"],
            sender=data["sender"],
            text=data["text"],
            at=data["timestamp"],
            kind=data.get("type", "text"),
            details=data.get("details") or {key: data[key] for key in NEONIZE_DETAILS if key in data},
            media=data.get("media"),
            lid=data.get("lid"),
        )
        return
    engine_states_apply([event], host_id)


# The engine events that change a session's own state.
STATE_KINDS = frozenset(
    {
        EngineEventKind.QR,
        EngineEventKind.CONNECTED,
        EngineEventKind.RECONNECTING,
        EngineEventKind.DISCONNECTED,
        EngineEventKind.ERROR,
    }
)


def engine_states_apply(events: list[EngineEvent], host_id: str | None = None) -> None:
    """A run of session state changes (STATE_KINDS), written in one transaction, then
    published in their order: a host taking hundreds of sessions up commits once per run,
    not once per session. Each is fenced by its lease as `engine_event_apply` says."""
    applied: list[tuple[EngineEvent, WaSession, list[DomainEvent]]] = []
    # Sessions locked in id order (a session's own events keep theirs), as lease renewals
    # lock them: no deadlock between the two.
    for event in sorted(events, key=lambda event: event.session_id):
        session = _state_session(event, host_id)
        if session is not None:
            applied.append((event, session, _state_change(session, event)))
    db.session.commit()
    for event, session, published in applied:
        with log_context(session_id=session.id):
            data = event.data
            if data.get("signal"):  # WhatsApp's warnings about the number: its sending pauses
                engine_signal_pause(session, data["signal"], data.get("reason"))
            published.append(SessionStatusChanged.of(session))
            for domain_event in published:
                event_publish(session.user_id, domain_event)
            log.info("session %s: %s -> %s", session.id, event.kind, session.status)


def _state_session(event: EngineEvent, host_id: str | None) -> WaSession | None:
    """The event's session, locked under the lease stamped on it when a host reports it;
    None when it is gone or not that host's any more."""
    if host_id is None:
        return db.session.get(WaSession, event.session_id)
    generation = event.data.get(LEASE_STAMP)
    session = None if generation is None else lease_lock(event.session_id, host_id, generation)
    if session is None:
        log.info("session %s: %s from %s, not its holder: ignored", event.session_id, event.kind, host_id)
    return session


def _state_change(session: WaSession, event: EngineEvent) -> list[DomainEvent]:
    """Change the session as the event says; the domain events to publish once written."""
    data = event.data
    events: list[DomainEvent] = []
    if event.kind == EngineEventKind.QR:
        session.status = SessionStatus.PENDING
        session.status_reason = None
        session.qr_code = qr_data_url(data["payload"])
        session.qr_payload = data["payload"]
        session.qr_expires_at = data["expiresAt"]
        events.append(
            SessionQr(
                session_id=session.id, qr_code=session.qr_code, expires_at=data["expiresAt"], qr_text=data["payload"]
            )
        )
    elif event.kind == EngineEventKind.CONNECTED:
        session.status = SessionStatus.CONNECTED
        session.status_reason = None
        session.phone = data["phone"]
        session.paired = True
        session.wanted_online = True
        session.connected_at = utcnow()
        session.paired_at = session.paired_at or session.connected_at  # warm-up counts from here
        _clear_qr(session)
        events.append(SessionConnected(session_id=session.id, phone=session.phone))
    elif event.kind == EngineEventKind.RECONNECTING:
        session.status = SessionStatus.RECONNECTING
        engine_reconnecting()
        events.append(SessionReconnecting(session_id=session.id))
    elif event.kind == EngineEventKind.DISCONNECTED:
        session.status = SessionStatus.DISCONNECTED
        session.status_reason = data.get("reason")
        # The engine let go of it (owner's request, unscanned QR, unlinked phone): it stays
        # offline until the owner connects it again.
        session.wanted_online = False
        session.lease_until = None  # no host needs to hold it now
        _clear_qr(session)
        if data.get("loggedOut"):
            session.paired = False
            session.phone = None
        events.append(SessionDisconnected(session_id=session.id, reason=session.status_reason))
    elif event.kind == EngineEventKind.ERROR:
        session.status = SessionStatus.ERROR
        session.status_reason = data.get("reason")
        _clear_qr(session)
    return events
