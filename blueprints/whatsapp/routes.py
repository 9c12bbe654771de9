import functools

from flask import current_app, g, request, url_for

from blueprints.common import (
    authenticate,
    in_test_mode,
    live_required,
    request_credential,
    send_response,
    session_allowed,
    simulator_pair_url,
    status_poll_rate_limit,
    unrestricted_required,
)
from blueprints.contract.native import ENGINE, LEGACY, WITH_BODY, native
from blueprints.contract.wiring import Answer
from blueprints.schemas import legacy as schemas
from blueprints.schemas.messages import SEND_ANSWERS, SEND_ERRORS, IdempotencyKey
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


LEGACY_ERRORS = (401, 403, 404, 429)


@bp.post("/init")
@native.operation(
    "legacyInit",
    "Legacy",
    Answer(200, "Initializing", schemas.LegacyInitialized),
    errors=(401, 403, 429, *ENGINE),
    security=LEGACY,
)
@legacy_auth
@live_required
def init():
    """Create (or reconnect) the default session

    And start pairing. Without credentials only trusted networks (`TRUSTED_NETWORKS`) may
    call the legacy API; they act as the legacy owner account.
    """
    session = _session(required=False)
    if session is None:
        unrestricted_required("create sessions")
        session = svc.session_create(g.user, name="Default", description="Legacy single-session API")
    else:
        session = svc.session_connect(g.user, session.id)
    if session.status != "connected":
        message = "WhatsApp is initializing. GET /api/whatsapp/qr for the QR code"
    else:
        message = "WhatsApp is already connected"
    return {"success": True, "sessionId": session.id, "status": session.status, "message": message}


@bp.get("/qr")
@native.operation(
    "legacyQr", "Legacy", Answer(200, "The QR code, or null", schemas.LegacyQr), errors=LEGACY_ERRORS, security=LEGACY
)
@legacy_auth
def qr():
    """The default session's QR code"""
    session = svc.session_qr(g.user, _session().id)
    return {
        "qrCode": session.qr_code if session.has_qr else None,
        "status": session.status,
        "expiresAt": isoformat(session.qr_expires_at) if session.has_qr else None,
        "sessionId": session.id,
        **simulator_pair_url(session),
    }


@bp.get("/status")
@native.operation(
    "legacyStatus", "Legacy", Answer(200, "The status", schemas.LegacyStatus), errors=LEGACY_ERRORS, security=LEGACY
)
@status_poll_rate_limit
@legacy_auth
def status():
    """The default session's status"""
    session = _session()
    return {"success": True, "connected": session.status == "connected", **session.to_status_dict()}


@bp.post("/send")
@native.operation("legacySend", "Legacy", *SEND_ANSWERS, errors=SEND_ERRORS, security=LEGACY)
@legacy_auth
@native.request(body=schemas.LegacySend, headers=IdempotencyKey)
def send(body: dict, headers: dict):
    """Send a text from the default session"""
    message = message_send(
        g.user,
        _session().id,
        to=body["number"],
        text=body["message"],
        idempotency_key=headers.get("Idempotency-Key"),
        simulated=in_test_mode(),
    )
    return send_response(message_wait(message, current_app.config["SEND_WAIT_SECONDS"]))


@bp.post("/bulk-send")
@native.operation(
    "legacyBulkSend",
    "Legacy",
    Answer(200, "Finished: a result per contact", schemas.BulkReport),
    Answer(202, "Accepted: a long batch runs on; follow `progressUrl`", schemas.BulkReport),
    errors=(*WITH_BODY, *LEGACY_ERRORS, 402, *ENGINE),
    security=LEGACY,
)
@legacy_auth
@native.request(body=schemas.BulkSend)
def bulk_send(body: dict):
    """Send one text to many contacts

    Growth plan and above, paced by `delay` ms. Invalid and repeated numbers are reported
    per contact. Batches expected to take longer than `BULK_WAIT_SECONDS` answer 202 at once.
    """
    batch = bulk.bulk_create(
        g.user,
        _session(required=False),
        contacts=body["contacts"],
        text=body["message"],
        delay=body.get("delay"),
        simulated=in_test_mode(),
        send_at=body.get("sendAt"),
    )
    wait = current_app.config["BULK_WAIT_SECONDS"]
    if bulk.batch_expected_seconds(batch) <= wait:
        batch = bulk.batch_wait(batch, wait)
    report = bulk.batch_report(batch)
    if batch.status == "finished":
        return {"success": True, **report}
    progress_url = url_for("whatsapp.bulk_status", batch_id=batch.id, _external=True)
    return {"success": True, "progressUrl": progress_url, **report}, 202


@bp.post("/bulk-send/<batch_id>/cancel")
@native.operation(
    "legacyBulkCancel",
    "Legacy",
    Answer(200, "Cancelled before it started: nothing is sent, its quota comes back", schemas.BulkReport),
    errors=(*LEGACY_ERRORS, 409),
    security=LEGACY,
)
@legacy_auth
def bulk_cancel(batch_id: str):
    """Cancel a scheduled batch

    Only before it starts (`409 NOT_SCHEDULED` afterwards).
    """
    session_allowed(bulk.batch_get(g.user, batch_id).session_id)
    batch = bulk.batch_cancel(g.user, batch_id)
    return {"success": True, **bulk.batch_report(batch)}


@bp.get("/bulk-send/<batch_id>")
@native.operation(
    "legacyBulkStatus",
    "Legacy",
    Answer(200, "Live counts and per-contact results", schemas.BulkReport),
    errors=LEGACY_ERRORS,
    security=LEGACY,
)
@legacy_auth
def bulk_status(batch_id: str):
    """A batch's progress

    Its live counts and per-contact results.
    """
    batch = bulk.batch_get(g.user, batch_id)
    session_allowed(batch.session_id)
    return {"success": True, **bulk.batch_report(batch)}
