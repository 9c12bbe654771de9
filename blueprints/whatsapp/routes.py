import functools

from flask import current_app, g, jsonify, request, url_for

from blueprints.common import (
    authenticate,
    in_test_mode,
    json_body,
    live_required,
    request_credential,
    send_response,
    session_allowed,
    simulator_pair_url,
    status_poll_rate_limit,
    unrestricted_required,
)
from blueprints.whatsapp import bp
from models.base import isoformat
from services.accounts.legacy import legacy_owner, legacy_session, request_is_trusted
from services.errors import NotFound, Unauthorized
from services.messaging import bulk
from services.messaging.sending import message_send, message_wait
from services.sessions import lifecycle as svc


def legacy_auth(view):
    """A token or API key when given; otherwise only trusted networks, acting as the legacy owner."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        credential = request_credential()
        if credential:
            authenticate(credential)
        elif request_is_trusted(request.remote_addr):
            g.user, g.api_key = legacy_owner(), None
        else:
            raise Unauthorized(
                "Send 'Authorization: Bearer <token or API key>'; only trusted networks may call the legacy API "
                "without one",
                code="AUTH_REQUIRED",
            )
        return view(*args, **kwargs)

    return wrapper


def _session(*, required: bool = True):
    """The caller's default session (if its API key may use it)."""
    session = legacy_session(g.user)
    if session is not None:
        session_allowed(session.id)
    elif required:
        raise NotFound(
            "No WhatsApp session yet: POST /api/whatsapp/init first",
            error="Session not found",
            code="SESSION_NOT_FOUND",
        )
    return session


@bp.post("/init")
@legacy_auth
@live_required
def init():
    """Create the default session (or bring it back online) and start pairing."""
    session = _session(required=False)
    if session is None:
        unrestricted_required("create sessions")
        session = svc.session_create(g.user, name="Default", description="Legacy single-session API")
    else:
        session = svc.session_connect(g.user, session.id)
    return jsonify(
        success=True,
        sessionId=session.id,
        status=session.status,
        message="WhatsApp is initializing. GET /api/whatsapp/qr for the QR code"
        if session.status != "connected"
        else "WhatsApp is already connected",
    )


@bp.get("/qr")
@legacy_auth
def qr():
    """The default session's QR code."""
    session = svc.session_qr(g.user, _session().id)
    return jsonify(
        qrCode=session.qr_code if session.has_qr else None,
        status=session.status,
        expiresAt=isoformat(session.qr_expires_at) if session.has_qr else None,
        sessionId=session.id,
        **simulator_pair_url(session),
    )


@bp.get("/status")
@status_poll_rate_limit
@legacy_auth
def status():
    """The default session's connection status."""
    session = _session()
    return jsonify(
        success=True,
        connected=session.status == "connected",
        **session.to_status_dict(),
    )


@bp.post("/send")
@legacy_auth
def send():
    """Send a text from the default session: {number, message}."""
    body = json_body()
    message = message_send(
        g.user,
        _session().id,
        to=body.get("number"),
        text=body.get("message"),
        idempotency_key=request.headers.get("Idempotency-Key"),
        simulated=in_test_mode(),
    )
    return send_response(message_wait(message, current_app.config["SEND_WAIT_SECONDS"]))


@bp.post("/bulk-send")
@legacy_auth
def bulk_send():
    """Send one text to many contacts, paced by `delay` ms; long batches answer 202 at once."""
    body = json_body()
    batch = bulk.bulk_create(
        g.user,
        _session(required=False),
        contacts=body.get("contacts"),
        text=body.get("message"),
        delay=body.get("delay"),
        simulated=in_test_mode(),
        send_at=body.get("sendAt"),
    )
    wait = current_app.config["BULK_WAIT_SECONDS"]
    if bulk.batch_expected_seconds(batch) <= wait:
        batch = bulk.batch_wait(batch, wait)
    report = bulk.batch_report(batch)
    if batch.status == "finished":
        return jsonify(success=True, **report)
    progress_url = url_for("whatsapp.bulk_status", batch_id=batch.id, _external=True)
    return jsonify(success=True, progressUrl=progress_url, **report), 202


@bp.post("/bulk-send/<batch_id>/cancel")
@legacy_auth
def bulk_cancel(batch_id: str):
    """Call off a scheduled batch before it starts (409 once it has started)."""
    session_allowed(bulk.batch_get(g.user, batch_id).session_id)
    batch = bulk.batch_cancel(g.user, batch_id)
    return jsonify(success=True, **bulk.batch_report(batch))


@bp.get("/bulk-send/<batch_id>")
@legacy_auth
def bulk_status(batch_id: str):
    """A batch's live counts and per-contact results."""
    batch = bulk.batch_get(g.user, batch_id)
    session_allowed(batch.session_id)
    return jsonify(success=True, **bulk.batch_report(batch))
