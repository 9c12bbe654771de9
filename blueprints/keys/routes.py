import functools

from flask import jsonify

from blueprints.common import auth_required, current_user, json_body, live_required, unrestricted_required
from blueprints.keys import bp
from services.accounts.api_keys import api_key_create, api_key_revoke, api_keys_list


def full_access_required(view):
    """Keys are managed with a login token or a live key that may use every session.

    A test key, or a key limited to some sessions, could otherwise mint itself a wider one.
    """

    @auth_required
    @live_required
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        unrestricted_required("manage API keys")
        return view(*args, **kwargs)

    return wrapper


@bp.post("")
@full_access_required
def create():
    """Create a key: {name, mode?, sessionIds?, expiresAt?}; the key itself is in this answer only."""
    body = json_body()
    key, plaintext = api_key_create(
        current_user(),
        name=body.get("name"),
        mode=body.get("mode"),
        session_ids=body.get("sessionIds"),
        expires_at=body.get("expiresAt"),
    )
    return jsonify(
        success=True,
        message="API key created. Copy it now: it is shown only this once",
        key=plaintext,
        **key.to_dict(),
    ), 201


@bp.get("")
@full_access_required
def index():
    """List the caller's keys, newest first (never the keys themselves)."""
    keys = [key.to_dict() for key in api_keys_list(current_user())]
    return jsonify(success=True, keys=keys, total=len(keys))


@bp.delete("/<key_id>")
@full_access_required
def revoke(key_id: str):
    """Revoke a key: it stops working at once."""
    key = api_key_revoke(current_user(), key_id)
    return jsonify(success=True, message="API key revoked", key=key.to_dict())
