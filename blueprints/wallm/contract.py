"""Wallm's dialect: its contract, error table and error answers.

Wallm documents its authentication (`X-Api-Key`), its rate-limit headers and 429, but no
error body: wagate answers Wallm's errors in its own shape `{"error", "message", "code"}`
with the status of the failure, so a Wallm client's "handle 4xx and 5xx" keeps working and
has a code to branch on.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.exceptions import HTTPException

from blueprints.contract.wiring import RATE_LIMIT_HEADERS, Contract, ErrorTable
from blueprints.contract.wiring import Rule as R
from blueprints.errors.handlers import HTTP_CODES, internal_error, outage_error, response_headers_final
from blueprints.schemas.fields import Error
from services.errors import ApiError

WALLM_ERRORS = ErrorTable(
    (
        R("INVALID_NUMBER", ("to",)),
        R(
            "MESSAGE_TOO_LONG",
            ("text",),
            ("string_too_long",),
            message="'text' is too long: at most {max_length} characters",
        ),
        R("EMPTY_MESSAGE", ("text",), message="'text' is required: the text to send"),
    )
)

API_KEY = [{"apiKey": []}]

wallm = Contract(
    name="wallm",
    info={
        "title": "Wallm API on wagate",
        "version": "1.0.0",
        "summary": "Wallm's send API, served by wagate: change the base URL and the key.",
        "description": "Send WhatsApp text messages as with Wallm. Authenticate with `X-Api-Key: <wagate API key>` "
        "(`wag_live_…`, or `wag_test_…` for simulated sends). Every answer carries `X-RateLimit-Limit`, "
        "`X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix time); past the limit the answer is "
        '429 with `Retry-After`. Errors are `{"error", "message", "code"}`.',
        "license": {"name": "Proprietary"},
    },
    tags=[("Messages", "Send messages from a session"), ("Service", "This document")],
    errors=WALLM_ERRORS,
    error_schema=Error,
    error_titles={
        400: "Invalid request, or refused by WhatsApp",
        401: "Missing or invalid API key",
        403: "The key may not use this session",
        404: "Session not found",
        409: "The session is not connected",
        413: "Request too large",
        429: "Rate limit or message quota exceeded",
        502: "WhatsApp's side failed",
        503: "Service unavailable; try again",
        504: "Timed out waiting for WhatsApp",
    },
    security_schemes={
        "apiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "A wagate API key (`wag_live_…` or `wag_test_…`) in place of Wallm's `wlm_live_…`",
        }
    },
    security=API_KEY,
    response_headers=RATE_LIMIT_HEADERS,
    every_answer=("X-Request-ID",),
    status_headers={429: ("Retry-After",), 503: ("Retry-After",)},
    errors_everywhere=(503,),
    path_parameters={"session_id": ("The session's id", str)},
)


def error_body(status: int, error: str, message: str, code: str):
    return jsonify({"error": error, "message": message, "code": code}), status


def register_errors(bp: Blueprint) -> None:
    """Render every error of `bp`'s routes in Wallm's shape (JSON whatever the Accept)."""

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        response_headers_final(exc.headers)
        body = {"error": exc.error, "message": exc.message, "code": exc.code, **exc.details}
        return jsonify(body), exc.status

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        error, code = HTTP_CODES.get(exc.code, (exc.name, exc.name.upper().replace(" ", "_")))
        message = exc.description or error
        if exc.code == 429:
            message = f"Rate limit exceeded ({exc.description}). Wait until the reset time before retrying."
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return (*error_body(exc.code, error, message, code), headers)

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        """An outage of the database or Redis is 503 with Retry-After; anything else is a bug (500)."""
        return api_error(outage_error(exc) or internal_error(exc))
