"""Every error in the documented shape {"error", "message", "code"}; HTML for browsers.

Every response carries X-Request-ID (a valid incoming one is echoed). An outage of the
database or Redis (services/platform/outages.py) is `503` with `Retry-After`, never a 500:
`outage_error` turns it into the ApiError every dialect's handlers render in their shape.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from extensions import login_manager
from services.errors import ApiError
from services.platform.outages import outage_rollback, outage_unavailable

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
HTTP_CODES = {
    400: ("Bad request", "BAD_REQUEST"),
    401: ("Unauthorized", "UNAUTHORIZED"),
    403: ("Forbidden", "FORBIDDEN"),
    404: ("Not found", "NOT_FOUND"),
    405: ("Method not allowed", "METHOD_NOT_ALLOWED"),
    413: ("Request too large", "PAYLOAD_TOO_LARGE"),
    415: ("Unsupported media type", "UNSUPPORTED_MEDIA_TYPE"),
    429: ("Too many requests", "RATE_LIMITED"),
    500: ("Internal server error", "INTERNAL_ERROR"),
}
# The answers that tell the client when to come back.
RETRY_STATUSES = {429, 503}


def _wants_json() -> bool:
    if request.path.startswith(("/api/", "/sim/", "/healthz", "/metrics")) or request.path == "/api":
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def error_response(status: int, error: str, message: str, code: str, extra: dict | None = None):
    if _wants_json():
        body = {"error": error, "message": message, "code": code, **(extra or {})}
        return jsonify(body), status
    return render_template("errors/error.html", status=status, error=error, message=message), status


def response_headers_final(headers: dict[str, str]) -> None:
    """Headers the response ends with, replacing any of the same name set by extensions.

    A send reply's X-RateLimit-* describe the message quota, not the request rate limit
    Flask-Limiter stamps on every API response.
    """
    if headers:
        g.setdefault("final_headers", {}).update(headers)


def outage_error(exc: Exception) -> ApiError | None:
    """The 503 an outage is answered with, or None when `exc` is another error.

    The request's database work is rolled back (its connection may be gone: the pool
    replaces it), and the page for a browser is the logged-out one, so drawing it looks
    nothing up.
    """
    unavailable = outage_unavailable(exc)
    if unavailable is None:
        return None
    current_app.logger.warning("%s (request %s): %s", unavailable.code, g.get("request_id"), exc)
    try:
        outage_rollback()
    except Exception:  # nothing more to undo: the session is dropped with the request
        current_app.logger.exception("could not roll back after an outage (request %s)", g.get("request_id"))
    g._login_user = login_manager.anonymous_user()
    return unavailable


def internal_error(exc: Exception) -> ApiError:
    """The 500 a bug is answered with, quoting the request id (its trace is logged)."""
    current_app.logger.error("unhandled error (request %s)", g.get("request_id"), exc_info=exc)
    return ApiError(
        f"Something went wrong on our end (request id {g.get('request_id')})",
        error="Internal server error",
        code="INTERNAL_ERROR",
        status=500,
    )


def register(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def send_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
        return response

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        response = error_response(exc.status, exc.error, exc.message, exc.code, exc.details)
        response_headers_final(exc.headers)
        return response

    def apply_final_headers(response):
        for name, value in g.get("final_headers", {}).items():
            response.headers[name] = value
        # Flask-Limiter stamps Retry-After on every limited answer; it means "wait, then try
        # again", which only a refusal for being too many (429) or unavailable (503) asks for.
        if response.status_code not in RETRY_STATUSES:
            response.headers.pop("Retry-After", None)
        return response

    # After-request functions run last-registered first; this one must run after
    # Flask-Limiter's (registered in limiter.init_app), so it goes to the front.
    app.after_request_funcs.setdefault(None, []).insert(0, apply_final_headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        error, code = HTTP_CODES.get(exc.code, (exc.name, exc.name.upper().replace(" ", "_")))
        message = exc.description or error
        if exc.code == 404:
            message = "The requested URL was not found on this server"
        if exc.code == 429:
            message = f"Rate limit exceeded ({exc.description}). Wait for the reset time before retrying."
        if exc.code == 413 and request.max_content_length:
            limit = request.max_content_length
            message = f"The request body is larger than the {limit} bytes ({limit / 1048576:g} MB) this route accepts"
            return error_response(413, error, message, code, {"maxBytes": limit})
        response, status = error_response(exc.code, error, message, code)
        # The exception's own headers stay: a 405 must list the methods it allows (RFC 9110).
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
        return response, status, headers

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        return api_error(outage_error(exc) or internal_error(exc))
