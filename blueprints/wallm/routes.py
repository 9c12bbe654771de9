from flask import current_app, jsonify, render_template, request, url_for

from blueprints.common import FAILURE_STATUS, SENT_STATUSES, auth_required, current_user, in_test_mode
from blueprints.contract.wiring import Answer
from blueprints.schemas.service import OpenApiDocument
from blueprints.security import csp
from blueprints.wallm import bp
from blueprints.wallm import schemas as wallm_schemas
from blueprints.wallm.contract import register_errors, wallm
from models import MessageStatus
from services.accounts.quotas import quota_refunds
from services.errors import ApiError
from services.messaging.sending import message_send, message_wait

register_errors(bp)


@bp.post("/v1/sessions/<session_id>/messages/text")
@wallm.operation(
    "sendTextMessage",
    "Messages",
    Answer(200, "Sent", wallm_schemas.TextSent),
    Answer(202, "Accepted and queued: it goes out shortly", wallm_schemas.TextSent),
    errors=(400, 401, 403, 404, 409, 413, 429, 502, 503, 504),
)
@auth_required
@wallm.request(body=wallm_schemas.SendText, example={"to": "+966501234567", "text": "أهلا, عساك بخير؟"})
def send_text(session_id: str, body: dict):
    """Send a text message

    From the session in the path to `to` (a phone number with its country code). Waits a
    few seconds for WhatsApp: 200 once sent, 202 while still queued; a send WhatsApp refused
    is the error with its code.
    """
    message = message_send(
        current_user(), session_id, to=body["to"], text=body["text"], idempotency_key=None, simulated=in_test_mode()
    )
    message = message_wait(message, current_app.config["SEND_WAIT_SECONDS"])
    if message.status == MessageStatus.FAILED:
        refunded = quota_refunds(message.error_code)
        raise ApiError(
            f"Message to {message.phone} failed: {message.error}",
            error=message.error or "Send failed",
            code=message.error_code or "SEND_FAILED",
            status=FAILURE_STATUS.get(message.error_code, 502 if refunded else 400),
        )
    body = {
        "id": message.id,
        "sessionId": session_id,
        "to": message.phone,
        "status": str(message.status),
        "simulated": bool(message.simulated),
    }
    return body, 200 if message.status in SENT_STATUSES else 202


@bp.get("/docs/wallm/openapi.json")
@wallm.operation(
    "openapi",
    "Service",
    Answer(200, "The OpenAPI 3.1 document of Wallm's API on wagate", OpenApiDocument),
    security=[],
)
def openapi():
    """This document"""
    response = jsonify(wallm.document(current_app, request.url_root))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/docs/wallm")
@csp(style_src="'self' 'unsafe-inline'", worker_src="'self' blob:")
def docs():
    """Wallm's API reference on wagate, rendered from its OpenAPI document."""
    return render_template("docs/dialect.html", title="Wallm API", spec_url=url_for("wallm.openapi"))
