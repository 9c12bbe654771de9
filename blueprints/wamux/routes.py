import json

from flask import Response, current_app, g, jsonify, render_template, request, stream_with_context, url_for

from blueprints.common import (
    allowed_session_ids,
    auth_required,
    current_user,
    in_test_mode,
    live_required,
    message_log_page,
    session_allowed,
    unrestricted_required,
)
from blueprints.contract.wiring import Answer
from blueprints.keys.routes import full_access_required
from blueprints.schemas.messages import MessagesQuery
from blueprints.schemas.service import OpenApiDocument
from blueprints.security import csp
from blueprints.wamux import bp, pages
from blueprints.wamux import schemas as wamux_schemas
from blueprints.wamux.contract import register_errors, wamux
from models import MessageStatus, SessionStatus, WaSession
from models.base import isoformat
from services.accounts.api_keys import api_key_create, api_key_revoke, api_keys_list
from services.errors import Conflict
from services.events.stream import stream_latest_id, stream_read
from services.messaging.history import message_get
from services.messaging.outgoing import explicit_audio_body, explicit_media_body
from services.messaging.sending import message_send
from services.sessions import lifecycle
from services.sessions.choice import session_for_send

register_errors(bp)

AUTHED = (401, 429)
SESSION_ERRORS = (*AUTHED, 403, 404)
WITH_BODY = (400, 413)

# -- sessions -----------------------------------------------------------------------------------


def _session(session: WaSession) -> dict:
    return {
        "id": session.id,
        "session_key": session.name,
        "status": session.status,
        "phone": session.phone,
        "createdAt": isoformat(session.created_at),
        "updatedAt": isoformat(session.updated_at),
    }


@bp.post("/sessions")
@wamux.operation(
    "createSession",
    "Sessions",
    Answer(201, "Created: its QR code comes on its stream", wamux_schemas.Session),
    errors=(*WITH_BODY, *AUTHED, 403, 503),
)
@auth_required
@live_required
@wamux.request(body=wamux_schemas.SessionCreate, required=False, example={"session_key": "my-session"})
def create_session(body: dict):
    """Create a session

    The engine starts pairing it at once: connect to its stream for the QR code to scan. A
    full account gets 403.
    """
    unrestricted_required("create sessions")
    session = lifecycle.session_create(current_user(), name=body.get("session_key"))
    return _session(session), 201


@bp.get("/sessions")
@wamux.operation(
    "listSessions", "Sessions", Answer(200, "Your sessions, oldest first", wamux_schemas.SessionList), errors=AUTHED
)
@auth_required
def list_sessions():
    """List sessions"""
    sessions = lifecycle.session_list(current_user(), only=allowed_session_ids())
    return {"data": [_session(session) for session in sessions], "total": len(sessions)}


@bp.get("/sessions/<session_id>")
@wamux.operation("getSession", "Sessions", Answer(200, "The session", wamux_schemas.Session), errors=SESSION_ERRORS)
@auth_required
def get_session(session_id: str):
    """Get a session"""
    return _session(lifecycle.session_get(current_user(), session_id))


@bp.patch("/sessions/<session_id>")
@wamux.operation(
    "updateSession", "Sessions", Answer(200, "Renamed", wamux_schemas.Session), errors=(*WITH_BODY, *SESSION_ERRORS)
)
@auth_required
@live_required
@wamux.request(body=wamux_schemas.SessionChange, example={"session_key": "support"})
def update_session(session_id: str, body: dict):
    """Rename a session"""
    session = lifecycle.session_update(current_user(), session_id, changes={"name": body["session_key"]})
    return _session(session)


@bp.delete("/sessions/<session_id>")
@wamux.operation(
    "deleteSession",
    "Sessions",
    Answer(200, "Deleted: its phone is unlinked", wamux_schemas.SessionDeleted),
    errors=(*SESSION_ERRORS, 503),
)
@auth_required
@live_required
def delete_session(session_id: str):
    """Delete a session

    Its phone is unlinked and its data wiped.
    """
    lifecycle.session_delete(current_user(), session_id)
    return {"id": session_id, "deleted": True}


@bp.get("/sessions/<session_id>/stream")
@wamux.operation(
    "streamSession",
    "Sessions",
    Answer(
        200,
        "An endless event stream: `qr` (data: {sessionId, qr: the PNG data URL to scan, expiresAt}), "
        "`connected` (data: {sessionId, phone}) and `error` (data: {sessionId, message}); the session's "
        "current QR code (or `connected`) comes first",
        None,
        media_type="text/event-stream",
    ),
    errors=(400, *SESSION_ERRORS),
)
@auth_required
@wamux.request(headers=wamux_schemas.LastEventId)
def stream_session(session_id: str, headers: dict):
    """The session's QR stream (Server-Sent Events)

    Scan the `qr` event's image with WhatsApp (Linked devices); a new one comes each time
    it expires, then `connected`. `error` when the session disconnects or pairing fails.
    Reconnect with `Last-Event-ID` to get the events missed.
    """
    session = lifecycle.session_get(current_user(), session_id)
    body = _session_events(session, headers.get("Last-Event-ID"), current_app.config["STREAM_HEARTBEAT_SECONDS"])
    return Response(
        stream_with_context(body),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _session_events(session: WaSession, last_event_id: str | None, heartbeat_seconds: float):
    """wagate's session events as Wamux's qr, connected and error (the others are left out);
    a new client gets the session's state first: its QR code to scan, or that it is connected."""
    position = last_event_id or stream_latest_id(session.id)
    yield "retry: 3000\n\n"
    if not last_event_id:
        if session.has_qr:
            yield _sse(
                position,
                "qr",
                {"sessionId": session.id, "qr": session.qr_code, "expiresAt": isoformat(session.qr_expires_at)},
            )
        elif session.status == SessionStatus.CONNECTED:
            yield _sse(position, "connected", {"sessionId": session.id, "phone": session.phone})
    while True:
        events = stream_read(session.id, position, heartbeat_seconds)
        if not events:
            yield ": heartbeat\n\n"
            continue
        for event in events:
            mapped = _mapped(event.event, json.loads(event.data))
            if mapped is not None:
                yield _sse(event.id, *mapped)
        position = events[-1].id


def _mapped(name: str, data: dict) -> tuple[str, dict] | None:
    session_id = data.get("sessionId")
    if name == "qr":
        return "qr", {"sessionId": session_id, "qr": data["qrCode"], "expiresAt": data.get("expiresAt")}
    if name == "connected":
        return "connected", {"sessionId": session_id, "phone": data.get("phone")}
    if name == "disconnected":
        return "error", {"sessionId": session_id, "message": data.get("reason") or "The session disconnected"}
    return None


def _sse(event_id: str, event: str, data: dict) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


# -- messages -----------------------------------------------------------------------------------

SEND_ERRORS = (*WITH_BODY, *SESSION_ERRORS, 409, 503)
ACCEPTED = Answer(202, "Accepted: it goes out shortly (see GET /api/v1/messages/{id})", wamux_schemas.MessageAccepted)


@bp.post("/messages")
@wamux.operation("sendMessage", "Messages", ACCEPTED, errors=SEND_ERRORS)
@auth_required
@wamux.request(
    body=wamux_schemas.SendText,
    example={"to": "+237612345678", "message": "Hello from WhatsApp API!"},
    max_bytes="SEND_MAX_REQUEST_BYTES",
)
def send_text(body: dict):
    """Send a text message

    From `sessionId`, or the key's session, or the account's only connected session. 409
    when that session is not connected.
    """
    return _send(body, text=body["message"])


@bp.post("/messages/media")
@wamux.operation("sendMedia", "Messages", ACCEPTED, errors=(*SEND_ERRORS, 415))
@auth_required
@wamux.request(
    body=wamux_schemas.SendMedia,
    example={
        "to": "+237612345678",
        "mediaUrl": "https://example.com/image.jpg",
        "mediaType": "image",
        "caption": "Check this out!",
    },
    max_bytes="SEND_MAX_REQUEST_BYTES",
)
def send_media(body: dict):
    """Send an image, video, document or sticker

    Images JPEG, PNG, WebP, GIF (16 MB); videos MP4, 3GPP, MOV, WebM (64 MB).
    """
    return _send(body, content=explicit_media_body(body))


@bp.post("/messages/audio")
@wamux.operation("sendAudio", "Messages", ACCEPTED, errors=(*SEND_ERRORS, 415))
@auth_required
@wamux.request(
    body=wamux_schemas.SendAudio,
    example={"to": "+237612345678", "audioUrl": "https://example.com/voice.ogg", "ptt": True},
    max_bytes="SEND_MAX_REQUEST_BYTES",
)
def send_audio(body: dict):
    """Send audio or a voice note

    `ptt: true` sends a voice note, `ptt: false` an audio file (MP3, OGG, AAC, WAV, Opus; 16 MB).
    """
    return _send(body, content=explicit_audio_body(body))


def _send(body: dict, *, text: str | None = None, content: dict | None = None):
    session = session_for_send(current_user(), g.get("api_key"), body.get("sessionId"))
    session_allowed(session.id)
    if session.status != SessionStatus.CONNECTED:
        raise Conflict(
            f"Session {session.id} is {session.status}: connect it (scan its QR code) before sending",
            error="Session not connected",
            code="SESSION_NOT_CONNECTED",
        )
    message = message_send(
        current_user(),
        session.id,
        to=body["to"],
        text=text,
        content=content,
        idempotency_key=None,
        simulated=in_test_mode(),
    )
    accepted = {
        "id": message.id,
        "toPhone": body["to"],
        "type": message.type,
        "status": _status(message.status),
        "sessionId": session.id,
    }
    return accepted, 202


def _status(status: str) -> str:
    return "pending" if status in (MessageStatus.QUEUED, MessageStatus.SCHEDULED) else str(status)


def _message(message: dict) -> dict:
    """A message of wagate's log (its to_dict) in Wamux's names."""
    return {
        "id": message["messageId"],
        "sessionId": message["sessionId"],
        "direction": message["direction"],
        "toPhone": message.get("to"),
        "fromPhone": message.get("from"),
        "type": message["type"],
        "message": message["message"],
        "status": _status(message["status"]),
        "error": message["error"],
        "createdAt": message["createdAt"],
        "sentAt": message["sentAt"],
        "deliveredAt": message["deliveredAt"],
        "readAt": message["readAt"],
    }


@bp.get("/messages")
@wamux.operation(
    "listMessages",
    "Messages",
    Answer(200, "One page, newest first", wamux_schemas.MessageList),
    errors=(400, *AUTHED, 403),
)
@auth_required
@wamux.request(query=MessagesQuery)
def list_messages(query: dict):
    """List messages

    Newest first; filter by sessionId, status, type, direction, chat, since, until; page by
    `cursor` (the answer's `nextCursor`) or `page`.
    """
    page = message_log_page(query)
    return {
        "data": [_message(message) for message in page["messages"]],
        "total": page["total"],
        "limit": page["limit"],
        "nextCursor": page["nextCursor"],
    }


@bp.get("/messages/<wamux_message_id:message_id>")
@wamux.operation("getMessage", "Messages", Answer(200, "The message", wamux_schemas.Message), errors=SESSION_ERRORS)
@auth_required
def get_message(message_id: str):
    """Get a message

    With its status and when it was sent, delivered and read.
    """
    message = message_get(current_user(), message_id)
    session_allowed(message.session_id)
    return _message(message.to_dict())


# -- API keys -----------------------------------------------------------------------------------


def _key(key) -> dict:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "mode": key.mode,
        "sessionId": key.allowed_session_ids[0] if key.allowed_session_ids else None,
        "createdAt": isoformat(key.created_at),
        "lastUsedAt": isoformat(key.last_used_at),
    }


@bp.post("/keys")
@wamux.operation(
    "createKey",
    "API Keys",
    Answer(201, "Created: the key is in this answer only", wamux_schemas.KeyCreated),
    errors=(*WITH_BODY, *AUTHED, 403, 404),
)
@full_access_required
@wamux.request(body=wamux_schemas.KeyCreate, required=False, example={"name": "production"})
def create_key(body: dict):
    """Create an API key

    Bound to `sessionId` when given (its sends go from that session). Needs a live key that
    may use every session. The key itself is in this answer only.
    """
    session_id = body.get("sessionId")
    if session_id:
        lifecycle.session_get(current_user(), session_id)
    key, plaintext = api_key_create(
        current_user(),
        name=body.get("name") or "Wamux key",
        mode=body.get("mode"),
        session_ids=[session_id] if session_id else None,
    )
    return _key(key) | {"key": plaintext}, 201


@bp.get("/keys")
@wamux.operation(
    "listKeys",
    "API Keys",
    Answer(200, "Newest first (never the keys themselves)", wamux_schemas.KeyList),
    errors=(*AUTHED, 403),
)
@full_access_required
def list_keys():
    """List API keys"""
    keys = [key for key in api_keys_list(current_user()) if key.revoked_at is None]
    return {"data": [_key(key) for key in keys], "total": len(keys)}


@bp.delete("/keys/<key_id>")
@wamux.operation(
    "deleteKey",
    "API Keys",
    Answer(200, "Deleted: it stops working at once", wamux_schemas.KeyDeleted),
    errors=(*AUTHED, 403, 404),
)
@full_access_required
def delete_key(key_id: str):
    """Delete an API key"""
    api_key_revoke(current_user(), key_id)
    return {"id": key_id, "deleted": True}


# -- the document -------------------------------------------------------------------------------


@pages.get("/docs/wamux/openapi.json")
@wamux.operation(
    "openapi", "Service", Answer(200, "The OpenAPI 3.1 document of Wamux's API on wagate", OpenApiDocument), security=[]
)
def openapi():
    """This document"""
    response = jsonify(wamux.document(current_app, request.url_root))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@pages.get("/docs/wamux")
@csp(style_src="'self' 'unsafe-inline'", worker_src="'self' blob:")
def docs():
    """Wamux's API reference on wagate, rendered from its OpenAPI document."""
    return render_template("docs/dialect.html", title="Wamux API", spec_url=url_for("wamux_pages.openapi"))
