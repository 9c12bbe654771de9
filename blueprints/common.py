"""What the API routes share: the request body, and who is asking."""

from __future__ import annotations

import functools

from flask import g, request

from models import User
from services.auth import token_user
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
