"""Errors in the self-hosted gateway's envelope, with its codes (see contract.py)."""

from __future__ import annotations

from flask import current_app, g, jsonify
from werkzeug.exceptions import HTTPException

from blueprints.errors.handlers import outage_error, response_headers_final
from blueprints.selfhosted import bp
from blueprints.selfhosted.contract import dialect_code
from services.errors import ApiError

# The answer's fields beyond code and message that wagate's errors may carry.
KEPT = ("field", "messageId", "retryable")


def error_body(code: str, status: int, message: str, details: dict | None = None) -> tuple[dict, int]:
    """The dialect's error for wagate's `code` at `status`: (body, status)."""
    dialect, status = dialect_code(code, status)
    error = {"code": dialect, "message": message}
    if code != dialect:
        error["reason"] = code
    error |= {name: value for name, value in (details or {}).items() if name in KEPT and value is not None}
    return {"error": error}, status


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    body, status = error_body(exc.code, exc.status, exc.message, exc.details)
    response_headers_final(exc.headers)
    return jsonify(body), status


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    if exc.code == 429:
        message = f"Too many requests ({exc.description}); wait for Retry-After seconds"
    else:
        message = exc.description or exc.name
    body, status = error_body(exc.name.upper().replace(" ", "_"), exc.code or 500, message)
    headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    return jsonify(body), status, headers


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    unavailable = outage_error(exc)
    if unavailable is not None:
        return api_error(unavailable)
    current_app.logger.exception("unhandled error (request %s)", g.get("request_id"))
    message = f"Something went wrong on our end (request id {g.get('request_id')})"
    return jsonify(error_body("INTERNAL_ERROR", 500, message)[0]), 500
