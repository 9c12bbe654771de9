from flask import request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from blueprints.errors.handlers import outage_error
from extensions import socketio
from services.accounts.api_keys import api_key_user
from services.accounts.legacy import request_is_trusted
from services.accounts.users import token_user
from services.errors import Unauthorized
from services.events.socketio import LEGACY_ROOM, user_room


def _user_for(auth: dict):
    """The user a token or API key names; keys limited to some sessions are refused, since a
    client joins its user's room and would hear every session's events."""
    api_key = auth.get("apiKey")
    if api_key:
        if not isinstance(api_key, str):
            raise ConnectionRefusedError("Invalid API key")
        user, key = api_key_user(api_key)
        if key.is_restricted:
            raise ConnectionRefusedError("This API key is limited to some sessions; events need an unrestricted key")
        return user
    return token_user(auth["token"])


def connect(auth=None):
    """Accept clients with a valid token, API key or dashboard login, each to its own user's room only;
    and, from a trusted network without credentials, legacy scripts to the legacy session's events.

    While the database or Redis is down, a client is refused with the 503's code and
    `retryAfter` (seconds), and connects again as Socket.IO clients do."""
    try:
        _connect(auth)
    except Exception as exc:
        unavailable = outage_error(exc)
        if unavailable is None:
            raise
        refusal = {"message": unavailable.message, "code": unavailable.code}
        raise ConnectionRefusedError(refusal | {"retryAfter": int(unavailable.headers["Retry-After"])}) from exc


def _connect(auth) -> None:
    auth = auth if isinstance(auth, dict) else {}
    if not auth.get("token") and request.args.get("token"):
        auth = {**auth, "token": request.args["token"]}
    if not auth.get("token") and not auth.get("apiKey"):
        if current_user.is_authenticated:  # the dashboard: its login cookie
            join_room(user_room(current_user.id))
            return
        if request_is_trusted(request.remote_addr):  # a legacy script, as the legacy API trusts it
            join_room(LEGACY_ROOM)
            return
        raise ConnectionRefusedError("Authentication required: connect with auth={'token': <JWT>} or {'apiKey': <key>}")
    try:
        user = _user_for(auth)
    except Unauthorized as exc:
        raise ConnectionRefusedError(exc.message) from exc
    join_room(user_room(user.id))


def register() -> None:
    """Attach the handlers to the Socket.IO server of the app being built.

    `@socketio.on` would bind them only to the server that existed at import time.
    """
    socketio.on_event("connect", connect)
