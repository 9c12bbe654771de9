from flask import request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from extensions import socketio
from services.auth import token_user
from services.errors import Unauthorized
from services.realtime import user_room


def connect(auth=None):
    """Accept only clients with a valid token or dashboard login; each joins its own user's room only."""
    token = (auth or {}).get("token") if isinstance(auth, dict) else None
    token = token or request.args.get("token")
    if not token and current_user.is_authenticated:  # the dashboard: its login cookie
        join_room(user_room(current_user.id))
        return
    if not token:
        raise ConnectionRefusedError("Authentication required: connect with auth={'token': <JWT>}")
    try:
        user = token_user(token)
    except Unauthorized as exc:
        raise ConnectionRefusedError(exc.message) from exc
    join_room(user_room(user.id))


def register() -> None:
    """Attach the handlers to the Socket.IO server of the app being built.

    `@socketio.on` would bind them only to the server that existed at import time.
    """
    socketio.on_event("connect", connect)
