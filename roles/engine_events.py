"""What an engine event means for a session: stored, then pushed to its owner."""

from __future__ import annotations

import logging

from engines import EngineEvent, EngineEventKind
from extensions import db
from models import SessionStatus, WaSession
from models.base import isoformat, utcnow
from services.contacts.book import contacts_sync
from services.events.socketio import event_emit
from services.governor.pace import engine_signal_pause
from services.messaging.inbound import message_inbound
from services.messaging.lifecycle import message_receipt
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


def engine_event_apply(event: EngineEvent) -> None:
    if event.kind == EngineEventKind.RECEIPT:
        message_receipt(event.session_id, event.data["waId"], event.data["status"], event.data["timestamp"])
        return
    if event.kind == EngineEventKind.PRESENCE:
        presence_seen(event.session_id, event.data)
        return
    if event.kind == EngineEventKind.CONTACTS:
        contacts_sync(event.session_id, event.data["contacts"])
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
        )
        return
    session = db.session.get(WaSession, event.session_id)
    if session is None:  # deleted while the engine was still busy with it
        return
    data = event.data
    emits: list[tuple[str, dict]] = []
    if event.kind == EngineEventKind.QR:
        session.status = SessionStatus.PENDING
        session.status_reason = None
        session.qr_code = qr_data_url(data["payload"])
        session.qr_payload = data["payload"]
        session.qr_expires_at = data["expiresAt"]
        expires_at = isoformat(data["expiresAt"])
        emits.append(("qr", {"sessionId": session.id, "qrCode": session.qr_code, "expiresAt": expires_at}))
    elif event.kind == EngineEventKind.CONNECTED:
        session.status = SessionStatus.CONNECTED
        session.status_reason = None
        session.phone = data["phone"]
        session.paired = True
        session.wanted_online = True
        session.connected_at = utcnow()
        session.paired_at = session.paired_at or session.connected_at  # warm-up counts from here
        _clear_qr(session)
        emits.append(("connected", {"sessionId": session.id, "phone": session.phone}))
    elif event.kind == EngineEventKind.RECONNECTING:
        session.status = SessionStatus.RECONNECTING
        emits.append(("reconnecting", {"sessionId": session.id}))
    elif event.kind == EngineEventKind.DISCONNECTED:
        session.status = SessionStatus.DISCONNECTED
        session.status_reason = data.get("reason")
        # The engine let go of it (owner's request, unscanned QR, unlinked phone): it stays
        # offline until the owner connects it again.
        session.wanted_online = False
        _clear_qr(session)
        if data.get("loggedOut"):
            session.paired = False
            session.phone = None
        emits.append(("disconnected", {"sessionId": session.id, "reason": session.status_reason}))
    elif event.kind == EngineEventKind.ERROR:
        session.status = SessionStatus.ERROR
        session.status_reason = data.get("reason")
        _clear_qr(session)
    db.session.commit()
    if data.get("signal"):  # WhatsApp's warnings about the number: its sending pauses
        engine_signal_pause(session, data["signal"], data.get("reason"))
    emits.append(("session_status", session.to_status_dict()))
    for name, payload in emits:
        event_emit(session.user_id, name, payload)
    log.info("session %s: %s -> %s", session.id, event.kind, session.status)
