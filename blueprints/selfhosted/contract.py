"""The self-hosted gateway dialect's contract: its error codes, envelope and document.

Its errors are `{"error": {"code": "SESSION_NOT_FOUND", "message": "...", "field": ...}}`
with the codes and statuses its document lists: UNAUTHORIZED 401, SESSION_NOT_FOUND 404,
SESSION_DISCONNECTED 409, VALIDATION_ERROR 422, RATE_LIMITED 429, INTERNAL_ERROR 500; what
it does not list keeps its HTTP meaning (FORBIDDEN 403, NOT_FOUND 404, CONFLICT 409...).
`reason` carries wagate's own, finer code (INVALID_NUMBER, SESSION_NOT_ALLOWED...).
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.contract.wiring import Contract, ErrorTable, Header
from blueprints.contract.wiring import Rule as R
from blueprints.schemas.fields import ANSWER, GroupId, Phone

# Every validation failure is the one code the document has for it.
# A text message's field is `text` here (the native API's is `message`).
SELFHOSTED_ERRORS = ErrorTable(
    (
        R(
            "VALIDATION_ERROR",
            types=("message_required",),
            field="text",
            message="'text' is required: the text to send (or one of image, video, audio, document, sticker, "
            "location, contact, poll)",
        ),
    ),
    default="VALIDATION_ERROR",
)

# wagate's codes that are one of the document's own, whatever their status.
CODES = {
    "SESSION_NOT_FOUND": ("SESSION_NOT_FOUND", 404),
    "SESSION_NOT_CONNECTED": ("SESSION_DISCONNECTED", 409),
    "NOT_CONNECTED": ("SESSION_DISCONNECTED", 409),
}
# The rest, by status.
STATUSES = {
    400: ("VALIDATION_ERROR", 422),
    401: ("UNAUTHORIZED", 401),
    402: ("PAYMENT_REQUIRED", 402),
    403: ("FORBIDDEN", 403),
    404: ("NOT_FOUND", 404),
    405: ("METHOD_NOT_ALLOWED", 405),
    409: ("CONFLICT", 409),
    413: ("PAYLOAD_TOO_LARGE", 413),
    415: ("UNSUPPORTED_MEDIA_TYPE", 415),
    422: ("VALIDATION_ERROR", 422),
    429: ("RATE_LIMITED", 429),
    500: ("INTERNAL_ERROR", 500),
    502: ("UPSTREAM_ERROR", 502),
    503: ("SERVICE_UNAVAILABLE", 503),
    504: ("TIMEOUT", 504),
}


def dialect_code(code: str, status: int) -> tuple[str, int]:
    """The dialect's (code, status) for one of wagate's errors."""
    if code in CODES:
        return CODES[code]
    return STATUSES.get(status, ("INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR", status))


@with_config(ANSWER)
class ErrorDetail(TypedDict):
    code: Annotated[str, Field(examples=["SESSION_NOT_FOUND"], pattern="^[A-Z][A-Z0-9_]*$")]
    message: str
    reason: NotRequired[Annotated[str, Field(description="wagate's own code, finer than `code`")]]
    field: NotRequired[Annotated[str, Field(description="The field at fault")]]
    messageId: NotRequired[Annotated[str, Field(description="A send that failed after it was accepted")]]
    retryable: NotRequired[bool]


@with_config(ANSWER)
class Error(TypedDict):
    error: ErrorDetail


ERROR_TITLES = {
    401: "UNAUTHORIZED: missing or invalid auth",
    402: "PAYMENT_REQUIRED: the trial is over",
    403: "FORBIDDEN: this key may not do that (a session key on an account route, a test key)",
    404: "SESSION_NOT_FOUND (or NOT_FOUND for a group or contact)",
    409: "SESSION_DISCONNECTED: the session is not connected (or CONFLICT)",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR: invalid request body or params",
    429: "RATE_LIMITED: too many requests",
    502: "UPSTREAM_ERROR: WhatsApp's side failed",
    503: "SERVICE_UNAVAILABLE: try again",
    504: "TIMEOUT: waiting for WhatsApp",
}

SESSION_KEY = [{"sessionKey": []}]
PERSONAL = [{"personalToken": []}]
EITHER = [*SESSION_KEY, *PERSONAL]

AUTHED = (401, 429)
WITH_BODY = (413, 422)
SESSION_ERRORS = (*AUTHED, 403, 404)
ENGINE_CALL = (409, 503, 504)

selfhosted = Contract(
    name="selfhosted",
    info={
        "title": "wagate: the self-hosted gateway API",
        "version": "1.0.0",
        "summary": "The self-hosted gateway's REST API, served by wagate at /api/v1.",
        "description": "Change the base URL to `<your wagate>/api/v1` and the key: a wagate API key restricted "
        "to one session is a **session key** (`Authorization: Bearer …`; session routes then need no session "
        "id; the session's dashboard page makes one), any other wagate API key (or a login token) is a "
        "**personal access token** (`X-API-Token: …`). With a personal access token, session routes take "
        "`?sessionId=`. Errors are "
        '`{"error": {"code": "SESSION_NOT_FOUND", "message": "…", "reason": "…", "field": "…"}}`.',
        "license": {"name": "Proprietary"},
    },
    tags=[
        ("Sessions", "WhatsApp sessions"),
        ("Messages", "Send a message, its type detected from the payload"),
        ("Contacts", "Contacts and number checks"),
        ("Groups", "The session's groups"),
        ("Service", "This document"),
    ],
    errors=SELFHOSTED_ERRORS,
    error_schema=Error,
    error_titles=ERROR_TITLES,
    security_schemes={
        "sessionKey": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "wagate API key restricted to one session",
            "description": "A session key: a wagate API key (`wag_live_…`) bound to one session",
        },
        "personalToken": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Token",
            "description": "A personal access token: a wagate API key not restricted to sessions, or a login JWT",
        },
    },
    security=EITHER,
    response_headers={
        "Retry-After": Header("Seconds to wait before trying again"),
        "X-Request-ID": Header("This request's id", str),
    },
    every_answer=("X-Request-ID",),
    status_headers={429: ("Retry-After",), 503: ("Retry-After",)},
    errors_everywhere=(503,),
    path_parameters={
        "session_id": ("The session's id", str),
        "group_id": ("The group's JID (…@g.us)", GroupId),
        "phone": ("A phone number with country code", Phone),
    },
)
