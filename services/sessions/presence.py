"""Presence: what a session shows its contacts (typing, recording, online), and what its
contacts show it, pushed to the owner as `presence_update` (webhook `presence.update`).

WhatsApp tells a session about a contact's online/offline only after the session asked to
follow that contact; typing and recording in a chat with the session come by themselves.
"""

from __future__ import annotations

from flask import current_app

from engines.base import PRESENCE_CHAT_STATES, PRESENCE_SEEN
from extensions import db
from jobs import engine as engine_jobs
from models import User, WaSession
from models.base import utcnow
from services.events.bus import event_publish
from services.events.catalog import PresenceUpdate
from services.hosts.calls import engine_call, engine_enqueue
from services.platform.phones import phone_normalize, recipient_normalize
from services.sessions.lifecycle import session_get, session_require_connected

REFUSALS = {
    "NUMBER_NOT_ON_WHATSAPP": (400, "Number not on WhatsApp"),
    "GROUP_NOT_FOUND": (404, "Group not found"),
}


def presence_send(user: User, session_id: str, *, to: str | None, state: str) -> dict:
    """Show typing/recording/paused in the chat `to` (a number or a group id), or
    available/unavailable to everyone (no `to`); which state goes with a `to` is the
    presence schema's to say (blueprints/schemas/contacts.py)."""
    session = session_get(user, session_id)
    chat = recipient_normalize(to) if state in PRESENCE_CHAT_STATES else None
    session_require_connected(session, "presence is shown through a connected session")
    seconds = current_app.config["GROUP_CALL_WAIT_SECONDS"]
    engine_call(session, "presence_send", chat, state, seconds=seconds, refusals=REFUSALS)
    return {"sessionId": session.id, "state": state, **({"to": chat} if chat else {})}


def presence_subscribe(user: User, session_id: str, phone: object) -> str:
    """Follow a contact's online/offline (`presence_update` events follow)."""
    session = session_get(user, session_id)
    phone = phone_normalize(phone, field="phone")
    session_require_connected(session, "presence is followed through a connected session")
    seconds = current_app.config["GROUP_CALL_WAIT_SECONDS"]
    engine_call(session, "presence_subscribe", phone, seconds=seconds, refusals=REFUSALS)
    return phone


def presence_seen(session_id: str, data: dict) -> None:
    """A contact's presence changed (an engine's PRESENCE event): tell the session's owner."""
    session = db.session.get(WaSession, session_id)
    if session is None or data.get("state") not in PRESENCE_SEEN:
        return
    event = PresenceUpdate(
        session_id=session.id,
        sender=data["from"],
        state=data["state"],
        chat=data.get("chat") or None,
        last_seen=data.get("lastSeen") or None,
        timestamp=utcnow(),
        lid=data.get("lid") or None,
    )
    event_publish(session.user_id, event)


def simulate_presence(user: User, session_id: str, *, sender: str, state: str, chat: str | None = None) -> None:
    """Simulator only: a contact comes online, goes offline, or types in a chat (a group) with
    the session."""
    session = session_get(user, session_id)
    sender = phone_normalize(sender, field="from")
    session_require_connected(session, "only a connected session sees presence")
    engine_enqueue(session, engine_jobs.engine_simulate_presence, session.id, sender, state, chat)
