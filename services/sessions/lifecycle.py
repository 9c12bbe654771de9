"""WhatsApp sessions: what owners can do with them. Engine work is enqueued, never done here."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import func, select

from extensions import db
from jobs import engine as engine_jobs
from models import SessionStatus, User, WaSession
from models.base import as_utc
from services.accounts.quotas import quota_keep_for_session
from services.errors import (
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    ValidationError,
    session_not_found,
)
from services.hosts.calls import engine_ask, engine_enqueue
from services.platform.waiting import wait_until

WAITING_FOR_QR = (SessionStatus.CONNECTING, SessionStatus.PENDING)


def session_list(user: User, *, only: list[str] | None = None) -> list[WaSession]:
    """The user's sessions, oldest first (`only` those ids, for an API key limited to them)."""
    query = select(WaSession).where(WaSession.user_id == user.id).order_by(WaSession.created_at)
    if only is not None:
        query = query.where(WaSession.id.in_(only))
    return list(db.session.scalars(query))


def session_get(user: User, session_id: str) -> WaSession:
    """The user's own session; anybody else's is indistinguishable from a missing one."""
    session = db.session.get(WaSession, session_id)  # once per request: the identity map has it after
    if session is None or session.user_id != user.id:
        raise session_not_found()
    return session


def session_require_connected(session: WaSession, purpose: str) -> None:
    if session.status != SessionStatus.CONNECTED:
        raise ApiError(
            f"Session is {session.status}; {purpose}",
            error="Session not connected",
            code="SESSION_NOT_CONNECTED",
            status=400,
        )


def session_create(user: User, *, name: str | None = None, description: str | None = None) -> WaSession:
    """A new session (named "My Session" without a name), which the engine starts pairing."""
    name = (name or "").strip() or "My Session"
    description = (description or "").strip()
    # Lock the owner's row so two concurrent creates cannot both slip under the plan limit.
    db.session.scalar(select(User.id).where(User.id == user.id).with_for_update())
    count = db.session.scalar(select(func.count()).select_from(WaSession).where(WaSession.user_id == user.id))
    if count >= user.plan.max_sessions:
        db.session.rollback()
        raise Forbidden(
            f"Your {user.plan.name} plan allows {user.plan.max_sessions} session(s). "
            "Delete a session or upgrade your plan to add more.",
            error="Session limit reached",
            code="SESSION_LIMIT_REACHED",
        )
    session = WaSession(user_id=user.id, name=name, description=description, status=SessionStatus.CONNECTING)
    db.session.add(session)
    db.session.commit()
    engine_enqueue(session, engine_jobs.engine_session_start, session.id)
    return session


def session_update(user: User, session_id: str, *, changes: dict) -> WaSession:
    """Rename a session or change its description (`changes`: either or both, as the schema has it)."""
    session = session_get(user, session_id)
    if "name" in changes:
        session.name = changes["name"].strip()
    if "description" in changes:
        session.description = changes["description"].strip()
    db.session.commit()
    return session


def session_connect(user: User, session_id: str) -> WaSession:
    session = session_get(user, session_id)
    if session.status == SessionStatus.CONNECTED:
        return session
    session.status = SessionStatus.CONNECTING
    session.status_reason = None
    session.wanted_online = True
    db.session.commit()
    engine_enqueue(session, engine_jobs.engine_session_start, session.id)
    return session


def session_disconnect(user: User, session_id: str) -> WaSession:
    session = session_get(user, session_id)
    session.wanted_online = False
    db.session.commit()
    engine_enqueue(session, engine_jobs.engine_session_stop, session.id, "Disconnected by the owner")
    return session


def session_logout(user: User, session_id: str) -> WaSession:
    session = session_get(user, session_id)
    session.wanted_online = False
    db.session.commit()
    engine_enqueue(session, engine_jobs.engine_session_logout, session.id, "Logged out by the owner")
    return session


def session_delete(user: User, session_id: str) -> None:
    session = session_get(user, session_id)
    quota_keep_for_session(session)  # its messages go, the slots they took stay taken
    db.session.delete(session)
    db.session.commit()
    # The row is gone; the engine still unlinks the device and wipes its store.
    engine_enqueue(session, engine_jobs.engine_session_logout, session.id, "Session deleted")


def session_qr(user: User, session_id: str) -> WaSession:
    """The session with its current QR; waits a few seconds for the first one to be made."""
    return wait_until(
        lambda: session_get(user, session_id),
        lambda s: s.has_qr or s.status not in WAITING_FOR_QR,
        current_app.config["QR_WAIT_SECONDS"],
    )


def session_pair_simulated(session_id: str, token: str, phone: object = None) -> WaSession | None:
    """The simulated phone scanned a QR: check it is the live one and hand it to the engine.

    Returns the session once connected, or None if the engine has not finished in time.
    """
    if current_app.config["WA_ENGINE"] != "simulator":
        raise NotFound("Simulated pairing is only available with the simulator engine", code="SIMULATOR_DISABLED")
    if phone is not None:
        phone = _phone_digits(phone)
    session = db.session.get(WaSession, session_id)
    expected = f"{current_app.config['PUBLIC_URL']}/sim/pair/{session_id}/{token}"
    if session is None or session.qr_payload is None:
        raise NotFound("This QR code is not valid (anymore)", error="QR code not found", code="QR_NOT_FOUND")
    if session.qr_payload != expected or session.status != SessionStatus.PENDING:
        raise Conflict("This QR code is not the session's current one; scan the new QR", code="QR_SUPERSEDED")
    if as_utc(session.qr_expires_at) <= datetime.now(UTC):
        raise Conflict("This QR code has expired; scan the new QR", error="QR code expired", code="QR_EXPIRED")
    owner = session.user_id
    engine_enqueue(session, engine_jobs.engine_session_pair, session.id, token, phone)
    return _connected_soon(owner, session_id)


def _connected_soon(owner: str, session_id: str) -> WaSession | None:
    """The session once the engine host has connected it, or None if not within PAIR_WAIT_SECONDS."""
    db.session.rollback()
    user = db.session.get(User, owner)
    session = wait_until(
        lambda: session_get(user, session_id),
        lambda s: s.status == SessionStatus.CONNECTED,
        current_app.config["PAIR_WAIT_SECONDS"],
    )
    return session if session.status == SessionStatus.CONNECTED else None


def _phone_digits(phone: object) -> str:
    if not isinstance(phone, str):
        raise ValidationError("'phone' must be a string of digits with country code", code="INVALID_PHONE")
    digits = "".join(ch for ch in phone if ch not in "+ -()")
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise ValidationError(
            "'phone' must be 8 to 15 digits with the country code, e.g. 919876543210", code="INVALID_PHONE"
        )
    return digits


def session_pair_code(user: User, session_id: str, phone: object) -> str:
    """Link a session by phone number instead of a QR scan: the code to enter on that phone."""
    phone = _phone_digits(phone)
    session = session_get(user, session_id)
    if session.status != SessionStatus.PENDING:
        raise Conflict(
            f"Session is {session.status}; a pairing code can only be had while it shows a QR code "
            "(POST /api/sessions/{id}/connect first if it is offline)",
            error="Session not pairing",
            code="NOT_PAIRING",
        )
    seconds = current_app.config["PAIR_CODE_WAIT_SECONDS"]
    return engine_ask(session, engine_jobs.engine_session_pair_code, session.id, phone, seconds=seconds)


def session_pair_code_simulated(session_id: str, code: object) -> WaSession | None:
    """The simulated phone entered a pairing code: the engine checks it and links the session.

    Returns the session once connected, or None if the engine has not finished in time.
    """
    if current_app.config["WA_ENGINE"] != "simulator":
        raise NotFound("Simulated pairing is only available with the simulator engine", code="SIMULATOR_DISABLED")
    if not isinstance(code, str) or not code.strip():
        raise ValidationError("'code' is required: the 8-character pairing code", code="INVALID_CODE")
    session = db.session.get(WaSession, session_id)
    if session is None or session.status != SessionStatus.PENDING:
        raise NotFound("No session is waiting for a pairing code here", error="Not pairing", code="NOT_PAIRING")
    owner = session.user_id
    seconds = current_app.config["PAIR_WAIT_SECONDS"]
    engine_ask(session, engine_jobs.engine_session_pair, session.id, code.strip(), None, seconds=seconds)
    return _connected_soon(owner, session_id)
