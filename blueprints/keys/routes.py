import functools

from blueprints.common import auth_required, current_user, live_required, unrestricted_required
from blueprints.contract.native import AUTHED, WITH_BODY, native
from blueprints.contract.wiring import Answer
from blueprints.keys import bp
from blueprints.schemas import keys as schemas
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
@native.operation(
    "createApiKey",
    "API keys",
    Answer(201, "Created: the key is in this answer only", schemas.KeyCreated),
    errors=(*WITH_BODY, *AUTHED, 403),
)
@full_access_required
@native.request(body=schemas.KeyCreate)
def create(body: dict):
    """Create an API key

    Needs a login token or an unrestricted live key. The key itself is in this answer only.
    """
    key, plaintext = api_key_create(
        current_user(),
        name=body["name"],
        mode=body.get("mode"),
        session_ids=body.get("sessionIds"),
        expires_at=body.get("expiresAt"),
    )
    return {
        "success": True,
        "message": "API key created. Copy it now: it is shown only this once",
        "key": plaintext,
        **key.to_dict(),
    }, 201


@bp.get("")
@native.operation(
    "listApiKeys",
    "API keys",
    Answer(200, "Newest first (never the keys themselves)", schemas.KeyList),
    errors=(*AUTHED, 403),
)
@full_access_required
def index():
    """List API keys"""
    keys = [key.to_dict() for key in api_keys_list(current_user())]
    return {"success": True, "keys": keys, "total": len(keys)}


@bp.delete("/<key_id>")
@native.operation(
    "revokeApiKey",
    "API keys",
    Answer(200, "Revoked: it stops working at once", schemas.KeyRevoked),
    errors=(*AUTHED, 403, 404),
)
@full_access_required
def revoke(key_id: str):
    """Revoke an API key

    It stops working at once.
    """
    key = api_key_revoke(current_user(), key_id)
    return {"success": True, "message": "API key revoked", "key": key.to_dict()}
