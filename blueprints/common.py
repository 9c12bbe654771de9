"""What the API routes share: who is asking, their limits, and the send answer."""

from __future__ import annotations

import functools

from flask import current_app, g, request
from flask_limiter.util import get_remote_address

from blueprints.errors.handlers import response_headers_final
from extensions import db, limiter
from models import Message, MessageStatus, User, WaSession
from models.base import isoformat
from services.accounts.api_keys import api_key_find, api_key_owner_id, api_key_user, is_api_key
from services.accounts.quotas import quota_headers, quota_refunds
from services.accounts.users import token_claims, token_user
from services.errors import Forbidden, Unauthorized
from services.messaging.history import messages_list
from services.sessions.lifecycle import session_get


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def request_credential() -> str | None:
    """What the caller authenticates with: a bearer token or API key, or an `X-Api-Key` key."""
    return bearer_token() or request.headers.get("X-Api-Key", "").strip() or None


def authenticate(credential: str) -> None:
    """Set `g.user`, and `g.api_key` (None for a login token); 401 for a bad credential."""
    if is_api_key(credential):
        g.user, g.api_key = api_key_user(credential, _presented(credential).get("key"))
    else:
        g.user, g.api_key = token_user(credential, _presented(credential).get("claims")), None


def _presented(credential: str) -> dict:
    """What this request's credential was found to be, looked up once: the rate limit asks
    before the view does. {"key": ApiKey | None} or {"claims": dict}, or {} for a token that
    failed its check (it is refused again, with its reason, when the view asks)."""
    found = g.get("presented")
    if found is not None and found[0] == credential:
        return found[1]
    if is_api_key(credential):
        answer = {"key": api_key_find(credential)}
    else:
        try:
            answer = {"claims": token_claims(credential)}
        except Unauthorized:
            answer = {}
    g.presented = (credential, answer)
    return answer


def session_allowed(session_id: str) -> None:
    """403 when the request's API key is limited to other sessions of its user.

    Another user's session (or a missing one) is 404 whatever the key, so no answer tells
    a caller that somebody else's id exists.
    """
    key = g.get("api_key")
    if key is not None and not key.allows(session_id):
        session_get(g.user, session_id)
        raise Forbidden(
            "This API key may not use this session",
            error="Session not allowed",
            code="SESSION_NOT_ALLOWED",
        )


def unrestricted_required(action: str) -> None:
    """403 when the request's API key is limited to some sessions (it cannot `action`)."""
    key = g.get("api_key")
    if key is not None and key.is_restricted:
        raise Forbidden(
            f"This API key is limited to some sessions, so it cannot {action}",
            error="Session not allowed",
            code="SESSION_NOT_ALLOWED",
        )


def allowed_session_ids() -> list[str] | None:
    """The sessions the request may see, or None for all of the user's."""
    key = g.get("api_key")
    return list(key.allowed_session_ids) if key is not None and key.is_restricted else None


def in_test_mode() -> bool:
    """Whether the request came with a test key: its sends are simulated, never sent."""
    key = g.get("api_key")
    return key is not None and key.is_test


def auth_required(view):
    """Let the request through only with a valid token or API key; then `g.user` and `g.api_key`.

    A session the URL's path names (`session_id`) that is not the user's is 404 before the
    view looks at anything else, exactly as a missing one. A key limited to some sessions
    is refused (403) for the user's other sessions, named in the path or the query
    (`?sessionId=`).
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        credential = request_credential()
        if credential is None:
            raise Unauthorized(
                "Missing or invalid authentication token: send 'Authorization: Bearer <token or API key>' "
                "or 'X-Api-Key: <API key>'",
                code="AUTH_REQUIRED",
            )
        authenticate(credential)
        if (request.view_args or {}).get("session_id"):
            # Kept for the request, so the view's own lookup finds it loaded already.
            g.path_session = session_get(g.user, request.view_args["session_id"])
        for session_id in ((request.view_args or {}).get("session_id"), request.args.get("sessionId")):
            if session_id:
                session_allowed(session_id)
        return view(*args, **kwargs)

    return wrapper


def live_required(view):
    """For routes a test key may not use: they change sessions or keys, which test mode cannot simulate."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if in_test_mode():
            raise Forbidden(
                "A test key only reads and simulates sends; use a live key or a login token for this",
                error="Live key required",
                code="LIVE_KEY_REQUIRED",
            )
        return view(*args, **kwargs)

    return wrapper


def current_user() -> User:
    return g.user


def _rate_limit_identity() -> str:
    """Who a request counts against: the token's or key's user, else the client address."""
    # Asked twice a request (the limit, then the key), and a key costs a lookup: remember it.
    if "wagate.rate_limit_identity" not in request.environ:
        request.environ["wagate.rate_limit_identity"] = _identify()
    return request.environ["wagate.rate_limit_identity"]


def _identify() -> str:
    credential = request_credential()
    if credential and is_api_key(credential):
        key = _presented(credential)["key"]
        owner = api_key_owner_id(credential, key) if key is not None else None
        if owner:
            return f"user:{owner}"
    elif credential:
        claims = _presented(credential).get("claims")
        if claims is not None:
            return f"user:{claims['sub']}"
    return f"ip:{get_remote_address()}"


def _rate_limit_value() -> str:
    """The plan's general API limit (or the operator's override for every plan)."""
    override = current_app.config["API_RATE_LIMIT"]
    if override:
        return override
    identity = _rate_limit_identity()
    user = db.session.get(User, identity.removeprefix("user:")) if identity.startswith("user:") else None
    g.rate_limited_user = user  # kept: the view's own lookup finds it loaded
    return user.plan.api_rate_limit if user else "100 per 15 minutes"


api_rate_limit = limiter.limit(_rate_limit_value, key_func=_rate_limit_identity, scope="api")


def _status_poll_key() -> str:
    """A user's polls of one session count together; unidentified callers' all together."""
    identity = _rate_limit_identity()
    if identity.startswith("user:"):
        return f"{identity}:{(request.view_args or {}).get('session_id', '')}"
    return identity


# Waiting for a scan means polling the session's status (the WAMessenger clients'
# waitForConnection asks every 2 s for 2 minutes): such polls have their own budget per
# session, in place of the plan's, so waiting leaves the plan's requests for the work.
status_poll_rate_limit = limiter.limit(
    lambda: current_app.config["STATUS_RATE_LIMIT"], key_func=_status_poll_key, scope="status"
)


def _auth_rate_limit() -> str:
    return current_app.config["AUTH_RATE_LIMIT"]


def login_succeeded() -> None:
    """Mark this request's login attempt as a success: it costs nothing of the guessing budget."""
    g.login_succeeded = True


def _login_failed(response) -> bool:
    return not g.get("login_succeeded", False)


# Per client address. Password guesses share one budget, whether they come to the API's
# login or the dashboard's form, and only attempts that log nobody in count: a script that
# logs in before each run never locks itself out. Registrations share another budget.
login_rate_limit = limiter.shared_limit(_auth_rate_limit, scope="login", methods=["POST"], deduct_when=_login_failed)
register_rate_limit = limiter.shared_limit(_auth_rate_limit, scope="register", methods=["POST"])


def simulator_pair_url(session: WaSession) -> dict:
    """With the simulator, what its QR code encodes: a POST to this URL is the simulated phone
    scanning it, so a terminal pairs with curl alone. Nothing with a real WhatsApp engine."""
    if current_app.config["WA_ENGINE"] != "simulator":
        return {}
    return {"pairUrl": session.qr_payload if session.has_qr else None}


SENT_STATUSES = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PLAYED}


# How a send that failed on WhatsApp's side answers (aulm's matrix); client errors are 400.
FAILURE_STATUS = {"ENGINE_TIMEOUT": 504, "UNREACHABLE": 502, "UPSTREAM_ERROR": 502, "UPSTREAM_AUTH": 502}


def send_failure(message: Message) -> tuple[int, dict[str, str]]:
    """The status a failed send answers with (aulm's refund matrix: 400 for the client's
    errors, 502/503/504 for WhatsApp's side), and its headers (Retry-After when overloaded)."""
    if message.error_code == "OVERLOADED":
        return 503, {"Retry-After": str(current_app.config["OVERLOAD_BACKOFF_SECONDS"])}
    return FAILURE_STATUS.get(message.error_code, 502 if quota_refunds(message.error_code) else 400), {}


def send_response(message: Message):
    """The WAMessenger send answer for where the message is now (sent, failed or still queued).

    A test key's simulated send answers as a sent one, marked `simulated: true`. The
    reply's X-RateLimit-* are the sender's message quota as it now stands (after any
    refund), when the plan has one.
    """
    response_headers_final(quota_headers(current_user()))
    if message.status in SENT_STATUSES:
        body = {"success": True, "message": "Message sent successfully", "messageId": message.id}
        body |= {"status": message.status, "to": message.phone}
        return (body | {"simulated": True} if message.simulated else body), 200
    if message.status == MessageStatus.FAILED:
        refunded = quota_refunds(message.error_code)
        body = {
            "success": False,
            "error": message.error,
            "message": f"Message to {message.phone} failed: {message.error}",
            "code": message.error_code,
            "messageId": message.id,
            "status": message.status,
            # Transient failures on WhatsApp's side gave the quota slot back and are worth retrying.
            "quotaRefunded": refunded,
            "retryable": refunded,
        }
        status, headers = send_failure(message)
        response_headers_final(headers)
        return body, status
    if message.status == MessageStatus.SCHEDULED:
        body = {"success": True, "message": "Message scheduled", "messageId": message.id, "status": message.status}
        return body | {"to": message.phone, "sendAt": isoformat(message.send_after)}, 202
    body = {"success": True, "message": "Message queued; it will be sent shortly", "messageId": message.id}
    return body | {"status": message.status, "to": message.phone}, 202


def message_log_page(query: dict) -> dict:
    """One page of the caller's message log, from a log query (the native API's and Wamux's
    share their names), limited to the sessions an API key may use."""
    return messages_list(
        current_user(),
        session_id=query.get("sessionId"),
        status=query.get("status"),
        direction=query.get("direction"),
        chat=query.get("chat"),
        kind=query.get("type"),
        since=query.get("since"),
        until=query.get("until"),
        cursor=query.get("cursor"),
        page=query.get("page"),
        limit=query.get("limit"),
        only_sessions=allowed_session_ids(),
    )
