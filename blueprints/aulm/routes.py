"""aulm's routes: the same services as the native API's, in aulm's words.

Sends answer 201 `{"data": {message_id, session_id, to, status, simulated}, "request_id"}`;
a send that failed on WhatsApp's side answers as aulm's refund matrix says (the quota slot
comes back for the transient failures, as for a native send). Every send's reply carries
the message quota as `x-ratelimit-*`, its reset in ISO 8601.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from flask import current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from blueprints.aulm import bp
from blueprints.aulm.contract import SEND_ERRORS, STATUS_ERRORS, aulm, aulm_code
from blueprints.aulm.schemas import SendImage, SendText, SentAnswer, StatusAnswer
from blueprints.common import (
    authenticate,
    bearer_token,
    current_user,
    in_test_mode,
    request_credential,
    send_failure,
    session_allowed,
)
from blueprints.contract.wiring import Answer
from blueprints.errors.handlers import outage_error, response_headers_final
from extensions import limiter
from models import Message, MessageStatus
from models.base import isoformat
from services.accounts.quotas import quota_headers
from services.errors import ApiError, Unauthorized
from services.messaging.sending import message_send, message_wait
from services.sessions.lifecycle import session_get

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
SENT = Answer(201, "Accepted by the messaging service (sent, or queued for its turn)", SentAnswer, RATE_HEADERS)


def aulm_auth(view):
    """`Authorization: Bearer <wagate API key>` (or a login token; wagate's `X-Api-Key` too),
    with aulm's 401s: missing_authorization, invalid_authorization, invalid_api_key..."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.headers.get("Authorization", "").strip() and bearer_token() is None:
            raise Unauthorized("The Authorization header must be 'Bearer <key>'", code="INVALID_AUTHORIZATION")
        credential = request_credential()
        if credential is None:
            raise Unauthorized(
                "No Authorization header: send 'Authorization: Bearer <key>'", code="MISSING_AUTHORIZATION"
            )
        authenticate(credential)
        return view(*args, **kwargs)

    return wrapper


@bp.post("/v1/messages/send-text")
@aulm.operation("sendText", "Messages", SENT, errors=SEND_ERRORS)
@aulm_auth
@aulm.request(
    body=SendText,
    example={"session_id": "f1e2d3c4-5678-4abc-9def-0123456789ab", "to": "+14155551234", "body": "Hello from aulm!"},
)
def send_text(body: dict):
    """Send a text message

    201 once the messaging service took it. A test key's send is simulated (`simulated: true`,
    a `sim_…` id). Failures answer as the refund matrix says.
    """
    return _send(body, {"message": body["body"]})


@bp.post("/v1/messages/send-image")
@aulm.operation(
    "sendImage",
    "Messages",
    Answer(201, "Image accepted by the messaging service", SentAnswer, RATE_HEADERS),
    errors=SEND_ERRORS,
)
@aulm_auth
@aulm.request(
    body=SendImage,
    example={
        "session_id": "f1e2d3c4-5678-4abc-9def-0123456789ab",
        "to": "+14155551234",
        "image": "https://example.com/receipt.png",
        "caption": "Receipt attached",
    },
    max_bytes="SEND_MAX_REQUEST_BYTES",  # the image inline as a data URL
)
def send_image(body: dict):
    """Send an image message

    The image as a data URL or an http(s) URL (checked by its bytes), with an optional caption.
    """
    content = {"image": body["image"]}
    if body.get("caption") is not None:
        content["caption"] = body["caption"]
    return _send(body, content)


def _send(body: dict, content: dict):
    session_allowed(body["session_id"])
    message = message_send(
        current_user(),
        body["session_id"],
        to=body["to"],
        content=content,
        idempotency_key=None,
        simulated=in_test_mode(),
    )
    message = message_wait(message, current_app.config["SEND_WAIT_SECONDS"])
    response_headers_final(aulm_headers(quota_headers(current_user())))
    if message.status == MessageStatus.FAILED:
        status, headers = send_failure(message)
        raise ApiError(
            f"Message to {_recipient(message)} failed: {message.error}",
            code=message.error_code,
            status=status,
            headers=headers,
        )
    sent = {
        "message_id": message.id,
        "session_id": message.session_id,
        "to": _recipient(message),
        "status": message.status,
        "simulated": bool(message.simulated),
    }
    return {"data": sent, "request_id": g.request_id}, 201


def _recipient(message: Message) -> str:
    """The recipient as aulm writes it: +<country code><number> (a group id as it is)."""
    return f"+{message.phone}" if message.phone.isdigit() else message.phone


@bp.get("/v1/sessions/<id>/status")
@aulm.operation(
    "getSessionStatus", "Sessions", Answer(200, "Current session status", StatusAnswer), errors=STATUS_ERRORS
)
@aulm_auth
def session_status(id: str):  # noqa: A002 (aulm's name for it)
    """Get session connection status

    Read-only: sessions are created, paired and disconnected in the dashboard.
    """
    session = session_get(current_user(), id)
    session_allowed(session.id)
    return {"data": {"session_id": session.id, "status": session.status}, "request_id": g.request_id}


# -- aulm's headers and errors --------------------------------------------------------------


@bp.after_request
def iso_reset(response):
    """x-ratelimit-reset in ISO 8601 on every answer, the request rate limit's too (Flask-Limiter
    stamps Unix seconds after this runs; the final headers replace its)."""
    if "X-RateLimit-Reset" not in g.get("final_headers", {}) and limiter.current_limit is not None:
        reset = datetime.fromtimestamp(limiter.current_limit.reset_at, UTC)
        response_headers_final({"X-RateLimit-Reset": isoformat(reset)})
    return response


def aulm_headers(headers: dict[str, str]) -> dict[str, str]:
    """Native rate-limit headers as aulm's: the reset as ISO 8601 instead of Unix seconds."""
    reset = headers.get("X-RateLimit-Reset")
    if reset and reset.isdigit():
        headers = headers | {"X-RateLimit-Reset": isoformat(datetime.fromtimestamp(int(reset), UTC))}
    return headers


def _error(code: str, status: int, message: str, headers: dict[str, str] | None = None):
    status, aulm_error = aulm_code(code, status)
    response_headers_final(aulm_headers(dict(headers or {})))
    return jsonify({"error": {"code": aulm_error, "message": message}}), status


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return _error(exc.code, exc.status, exc.message, exc.headers)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    if exc.code == 429:
        return _error("RATE_LIMITED", 429, f"Rate limit exceeded ({exc.description}); honor retry-after")
    if exc.code == 413:
        return _error("PAYLOAD_TOO_LARGE", 413, "The request body is larger than this route accepts")
    return _error(exc.name.upper().replace(" ", "_"), exc.code or 500, exc.description or exc.name)


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    unavailable = outage_error(exc)
    if unavailable is not None:
        return api_error(unavailable)
    current_app.logger.exception("unhandled error (request %s)", g.get("request_id"))
    return _error("INTERNAL_ERROR", 500, f"Server-side failure; quote x-request-id {g.get('request_id')}")
