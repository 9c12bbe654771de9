"""aulm's contract: its document, and its error codes for wagate's.

aulm's errors are `{"error": {"code", "message"}}` with lower-snake codes (its error-code
index and refund matrix). `AULM_CODES` names aulm's status and code for each of wagate's
codes that has its own row; whatever else a client did wrong is aulm's "other client error"
(400 invalid_request), and whatever else failed on wagate's side 500 internal_error.
"""

from __future__ import annotations

from blueprints.aulm.schemas import Error
from blueprints.contract.wiring import Contract, ErrorTable, Header

AULM_CODES: dict[str, tuple[int, str]] = {
    "INVALID_JSON": (400, "invalid_json"),
    "MISSING_AUTHORIZATION": (401, "missing_authorization"),
    "INVALID_AUTHORIZATION": (401, "invalid_authorization"),
    "INVALID_API_KEY": (401, "invalid_api_key"),
    "INVALID_TOKEN": (401, "invalid_api_key"),
    "API_KEY_REVOKED": (401, "api_key_revoked"),
    "API_KEY_EXPIRED": (401, "api_key_expired"),
    "TOKEN_EXPIRED": (401, "api_key_expired"),
    "SUBSCRIPTION_REQUIRED": (402, "subscription_required"),
    "SESSION_NOT_ALLOWED": (403, "session_not_allowed"),
    "SESSION_NOT_FOUND": (404, "session_not_found"),
    "NUMBER_NOT_ON_WHATSAPP": (404, "invalid_request"),
    "SESSION_NOT_CONNECTED": (409, "session_not_ready"),
    "TRIAL_QUOTA_EXCEEDED": (429, "trial_quota_exceeded"),
    "DAILY_QUOTA_EXCEEDED": (429, "daily_quota_exceeded"),
    "RATE_LIMITED": (429, "rate_limited"),
    "UNREACHABLE": (502, "messaging_service_unreachable"),
    "UPSTREAM_ERROR": (502, "messaging_service_error"),
    "UPSTREAM_AUTH": (502, "messaging_service_error"),
    "OVERLOADED": (503, "service_unavailable"),
    "ENGINE_OVERLOADED": (503, "service_unavailable"),
    "QUEUE_UNAVAILABLE": (503, "service_unavailable"),
    "DATABASE_UNAVAILABLE": (503, "service_unavailable"),
    "ENGINE_TIMEOUT": (504, "messaging_service_timeout"),
}


def aulm_code(code: str, status: int) -> tuple[int, str]:
    """aulm's status and code for wagate's `code` (answered with `status`)."""
    if code in AULM_CODES:
        return AULM_CODES[code]
    if status < 500:
        return 400, "invalid_request"
    return 500, "internal_error"


ERROR_TITLES = {
    400: "invalid_json or invalid_request",
    401: "missing_authorization, invalid_authorization, invalid_api_key, api_key_revoked or api_key_expired",
    402: "subscription_required: no active plan and the trial is over",
    403: "session_not_allowed: the API key is restricted from this session",
    404: "session_not_found, or invalid_request: the recipient is not on WhatsApp",
    409: "session_not_ready: the session is not connected",
    429: "daily_quota_exceeded, trial_quota_exceeded or rate_limited; honor retry-after",
    500: "internal_error: quote x-request-id",
    502: "messaging_service_unreachable or messaging_service_error (quota slot refunded)",
    503: "service_unavailable: upstream overload (quota slot refunded), or wagate's database or queue "
    "briefly unreachable (nothing stored); honor retry-after",
    504: "messaging_service_timeout (quota slot refunded)",
}

aulm = Contract(
    name="aulm",
    info={
        "title": "aulm API on wagate",
        "version": "1.0.0",
        "summary": "aulm's WhatsApp messaging API, served by a self-hosted wagate.",
        "description": "Change only the base URL and the key: use a wagate API key (`wag_live_…` for real "
        "sends, `wag_test_…` for simulated ones) as the Bearer token. Success bodies are "
        '`{"data": …, "request_id": …}`, errors `{"error": {"code", "message"}}`; every answer carries '
        "`x-request-id`, sends `x-ratelimit-*` (an ISO 8601 reset) and `retry-after` on 429 and 503.",
        "license": {"name": "Proprietary"},
    },
    tags=[
        ("Messages", "Send text and images"),
        ("Sessions", "A session's connection status (sessions are paired in the dashboard)"),
    ],
    # Validation failures are aulm's invalid_request (the blueprint renders the code).
    errors=ErrorTable((), default="INVALID_FIELD"),
    error_schema=Error,
    error_titles=ERROR_TITLES,
    security_schemes={
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "API key",
            "description": "A wagate API key (`wag_live_…` or `wag_test_…`) in place of an `alm_sk_…` key",
        }
    },
    security=[{"bearerAuth": []}],
    response_headers={
        "x-ratelimit-limit": Header("The plan's message quota (per UTC day, or a trial's total)"),
        "x-ratelimit-remaining": Header("What is left of it after this send"),
        "x-ratelimit-reset": Header("When it resets (ISO 8601)", str),
        "retry-after": Header("Seconds to wait before trying again"),
        "x-request-id": Header("This request's id: the body's request_id", str),
    },
    every_answer=("x-request-id",),
    status_headers={429: ("retry-after",), 503: ("retry-after",)},
    errors_everywhere=(503,),
    path_parameters={"id": ("The session's id", str)},
)

# The statuses a send can answer besides 201, and the status route besides 200.
SEND_ERRORS = (400, 401, 402, 403, 404, 409, 429, 500, 502, 503, 504)
STATUS_ERRORS = (400, 401, 403, 404, 429, 500)
