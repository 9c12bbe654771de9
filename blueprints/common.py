"""What the API routes share: the request body, and who is asking."""

from __future__ import annotations

import functools

from flask import current_app, g, jsonify, request
from flask_limiter.util import get_remote_address

from extensions import db, limiter
from models import Message, MessageStatus, User
from services.auth import token_claims, token_user
from services.errors import Unauthorized, ValidationError


def json_body(*, required: bool = True) -> dict:
    """The request's JSON object; an absent body is {} unless `required`."""
    if not request.get_data(cache=True):
        if required:
            raise ValidationError("A JSON request body is required", code="MISSING_BODY")
        return {}
    body = request.get_json(silent=True, force=True)
    if body is None:
        raise ValidationError("The request body is not valid JSON", error="Invalid JSON", code="INVALID_JSON")
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object", code="INVALID_BODY")
    return body


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def auth_required(view):
    """Let the request through only with a valid token; the user is then `g.user`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = bearer_token()
        if token is None:
            raise Unauthorized(
                "Missing or invalid authentication token: send 'Authorization: Bearer <token>'",
                code="AUTH_REQUIRED",
            )
        g.user = token_user(token)
        return view(*args, **kwargs)

    return wrapper


def current_user() -> User:
    return g.user


def _rate_limit_identity() -> str:
    """Who a request counts against: the token's user, else the client address."""
    token = bearer_token()
    if token:
        try:
            return f"user:{token_claims(token)['sub']}"
        except Unauthorized:
            pass
    return f"ip:{get_remote_address()}"


def _rate_limit_value() -> str:
    """The plan's general API limit (or the operator's override for every plan)."""
    override = current_app.config["API_RATE_LIMIT"]
    if override:
        return override
    identity = _rate_limit_identity()
    user = db.session.get(User, identity.removeprefix("user:")) if identity.startswith("user:") else None
    return user.plan.api_rate_limit if user else "100 per 15 minutes"


api_rate_limit = limiter.limit(_rate_limit_value, key_func=_rate_limit_identity, scope="api")


SENT_STATUSES = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PLAYED}


def send_response(message: Message):
    """The WAMessenger send answer for where the message is now (sent, failed or still queued)."""
    if message.status in SENT_STATUSES:
        body = {"success": True, "message": "Message sent successfully", "messageId": message.id}
        return jsonify(body | {"status": message.status, "to": message.phone}), 200
    if message.status == MessageStatus.FAILED:
        body = {
            "success": False,
            "error": message.error,
            "message": f"Message to {message.phone} failed: {message.error}",
            "code": message.error_code,
            "messageId": message.id,
            "status": message.status,
        }
        return jsonify(body), 400 if message.error_code == "NUMBER_NOT_ON_WHATSAPP" else 502
    body = {"success": True, "message": "Message queued; it will be sent shortly", "messageId": message.id}
    return jsonify(body | {"status": message.status, "to": message.phone}), 202
