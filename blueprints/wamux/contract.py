"""Wamux's dialect: its contract, error table and error answers.

Wamux documents its statuses (401 invalid or missing key, 404 session or resource not
found, 409 session not connected, 429 rate limit) but no error body. wagate answers them,
and every other error of these routes, as

    {"statusCode": 409, "error": "Session not connected", "message": "...", "code": "SESSION_NOT_CONNECTED"}

(`field` added when one field is at fault): the status repeated for clients that read only
the body, a short title, a sentence for people, and wagate's code to branch on.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.exceptions import HTTPException

from blueprints.contract.native import NATIVE_ERRORS
from blueprints.contract.wiring import RATE_LIMIT_HEADERS, Contract, ErrorTable
from blueprints.contract.wiring import Rule as R
from blueprints.errors.handlers import HTTP_CODES, internal_error, outage_error, response_headers_final
from blueprints.wamux.schemas import Error, SendMedia
from services.errors import ApiError

# Wamux's fields have the native API's names (to, message, caption, mediaUrl, audioUrl).
WAMUX_ERRORS = ErrorTable(
    (
        R(
            "INVALID_FIELD",
            types=("union_tag_invalid", "union_tag_not_found"),
            schemas=(SendMedia,),
            field="mediaType",
            message="'mediaType' must be one of image, video, document, sticker",
        ),
        R("INVALID_FIELD", ("session_key",), message="'session_key' must be a name of at most 100 characters"),
        *NATIVE_ERRORS.rules,
    )
)

BEARER = [{"bearerAuth": []}]

wamux = Contract(
    name="wamux",
    info={
        "title": "Wamux API on wagate",
        "version": "1.0.0",
        "summary": "Wamux's API, served by wagate: change the base URL and the key.",
        "description": "Sessions (create, scan the QR from the SSE stream, rename, delete), messages (text, "
        "media, audio and voice notes; the log) and API keys, as Wamux has them. Authenticate with "
        "`Authorization: Bearer <wagate API key>` (`wag_live_…`, or `wag_test_…` for simulated sends). A "
        "message without `sessionId` goes from the key's session when the key is bound to one, else from "
        "the account's only connected session. Errors are "
        '`{"statusCode", "error", "message", "code"}`: 401 invalid or missing key, 404 session or resource '
        "not found, 409 session not connected, 429 rate limit (with `Retry-After`).",
        "license": {"name": "Proprietary"},
    },
    tags=[
        ("Sessions", "WhatsApp sessions: create, pair from the QR stream, rename, delete"),
        ("Messages", "Send text, media and voice notes; the message log"),
        ("API Keys", "Keys for your scripts"),
        ("Service", "This document"),
    ],
    errors=WAMUX_ERRORS,
    error_schema=Error,
    error_titles={
        400: "Invalid request",
        401: "Invalid or missing API key",
        403: "Not allowed with this key or plan",
        404: "Session or resource not found",
        409: "Session not connected",
        413: "Request or media too large",
        415: "Unsupported media type",
        429: "Rate limit exceeded",
        503: "Service unavailable; try again",
    },
    security_schemes={
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "API key",
            "description": "A wagate API key (`wag_live_…` or `wag_test_…`) in place of Wamux's",
        }
    },
    security=BEARER,
    response_headers=RATE_LIMIT_HEADERS,
    every_answer=("X-Request-ID",),
    status_headers={429: ("Retry-After",), 503: ("Retry-After",)},
    errors_everywhere=(503,),
    path_parameters={
        "session_id": ("The session's id", str),
        "message_id": ("The message's id", str),
        "key_id": ("The key's id", str),
    },
)


def error_body(status: int, error: str, message: str, code: str, details: dict | None = None):
    body = {"statusCode": status, "error": error, "message": message, "code": code, **(details or {})}
    return jsonify(body), status


def register_errors(bp: Blueprint) -> None:
    """Render every error of `bp`'s routes in Wamux's shape (JSON whatever the Accept)."""

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        response_headers_final(exc.headers)
        return error_body(exc.status, exc.error, exc.message, exc.code, exc.details)

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        error, code = HTTP_CODES.get(exc.code, (exc.name, exc.name.upper().replace(" ", "_")))
        message = exc.description or error
        if exc.code == 429:
            message = f"Rate limit exceeded ({exc.description}). Wait for the reset time before retrying."
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return (*error_body(exc.code, error, message, code), headers)

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        """An outage of the database or Redis is 503 with Retry-After; anything else is a bug (500)."""
        return api_error(outage_error(exc) or internal_error(exc))
