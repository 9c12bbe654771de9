"""The self-hosted gateway's routes, each a thin call of the services the native API calls.

Account routes take a personal access token (`X-API-Token`: a wagate API key not restricted
to sessions, or a login token); session routes a session key (`Authorization: Bearer`: a key
restricted to one session), which names the session, or a personal access token with
`?sessionId=`.
"""

from __future__ import annotations

import functools

from flask import current_app, g, jsonify, request

from blueprints.common import (
    allowed_session_ids,
    authenticate,
    bearer_token,
    current_user,
    in_test_mode,
    live_required,
    send_response,
    session_allowed,
    simulator_pair_url,
    unrestricted_required,
)
from blueprints.contract.wiring import Answer
from blueprints.schemas import contacts as contact_schemas
from blueprints.schemas import groups as group_schemas
from blueprints.schemas import sessions as session_schemas
from blueprints.schemas.messages import IdempotencyKey, SendMessage, Sent
from blueprints.schemas.service import OpenApiDocument
from blueprints.selfhosted import bp, schemas
from blueprints.selfhosted.contract import (
    AUTHED,
    ENGINE_CALL,
    PERSONAL,
    SESSION_ERRORS,
    WITH_BODY,
    selfhosted,
)
from blueprints.selfhosted.errors import error_body
from models.base import isoformat
from services.contacts.book import contact_get, contact_upsert, contacts_list
from services.errors import Unauthorized, ValidationError
from services.messaging.sending import message_send, message_wait
from services.sessions import groups as group_svc
from services.sessions import lifecycle as svc
from services.sessions.numbers import numbers_check

# Where app.py mounts this blueprint: the gateway's base URL.
PREFIX = "/api/v1"


def _credential() -> str | None:
    """The gateway's own headers first; wagate's `X-Api-Key` is taken too, as on every API route."""
    return (
        request.headers.get("X-API-Token", "").strip()
        or bearer_token()
        or request.headers.get("X-Api-Key", "").strip()
        or None
    )


def token_required(view):
    """A session key or a personal access token; a session in the path must be one it may use."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        credential = _credential()
        if credential is None:
            raise Unauthorized(
                "Missing or invalid auth: send 'X-API-Token: <personal access token>' or "
                "'Authorization: Bearer <session key>'",
                code="UNAUTHORIZED",
            )
        authenticate(credential)
        session_id = (request.view_args or {}).get("session_id")
        if session_id:
            svc.session_get(g.user, session_id)
            session_allowed(session_id)
        return view(*args, **kwargs)

    return wrapper


def session_required(view):
    """For routes on one session: the session key's, or `?sessionId=` with a personal access token."""

    @token_required
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        allowed = allowed_session_ids()
        named = request.args.get("sessionId", "").strip()
        if named:
            session_id = named
        elif allowed is not None and len(allowed) == 1:
            session_id = allowed[0]
        else:
            raise ValidationError(
                "Which session? Use a session key (Authorization: Bearer), or add ?sessionId= to a personal "
                "access token's request",
                code="SESSION_REQUIRED",
                details={"field": "sessionId"},
            )
        svc.session_get(g.user, session_id)
        session_allowed(session_id)
        g.selfhosted_session = session_id
        return view(*args, **kwargs)

    return wrapper


def session_id() -> str:
    return g.selfhosted_session


# -- sessions ---------------------------------------------------------------------------------


@bp.get("/whatsapp-sessions")
@selfhosted.operation(
    "listSessions",
    "Sessions",
    Answer(200, "Your sessions", session_schemas.SessionList),
    errors=AUTHED,
    security=PERSONAL,
)
@token_required
def sessions_index():
    """List all sessions

    With a session key, just its session.
    """
    sessions = [s.to_dict() for s in svc.session_list(current_user(), only=allowed_session_ids())]
    return {"sessions": sessions, "total": len(sessions)}


@bp.post("/whatsapp-sessions")
@selfhosted.operation(
    "createSession",
    "Sessions",
    Answer(201, "Created; get its QR code next", session_schemas.SessionDetail),
    errors=(*WITH_BODY, *AUTHED, 403, 503),
    security=PERSONAL,
)
@token_required
@live_required
@selfhosted.request(body=session_schemas.SessionCreate, required=False)
def sessions_create(body: dict):
    """Create session

    `{"name", "description"}`, both optional. A session key cannot create sessions (403).
    """
    unrestricted_required("create sessions")
    session = svc.session_create(current_user(), name=body.get("name"), description=body.get("description"))
    return session.to_detail_dict(), 201


@bp.get("/whatsapp-sessions/<session_id>")
@selfhosted.operation(
    "getSession", "Sessions", Answer(200, "The session", session_schemas.SessionDetail), errors=SESSION_ERRORS
)
@token_required
def sessions_show(session_id: str):
    """Get session"""
    return svc.session_get(current_user(), session_id).to_detail_dict()


@bp.delete("/whatsapp-sessions/<session_id>")
@selfhosted.operation(
    "deleteSession",
    "Sessions",
    Answer(200, "Deleted; the device is unlinked", session_schemas.SessionDeleted),
    errors=(*SESSION_ERRORS, 503),
)
@token_required
@live_required
def sessions_delete(session_id: str):
    """Delete session"""
    svc.session_delete(current_user(), session_id)
    return {"success": True, "sessionId": session_id, "message": "Session deleted"}


ACTED = Answer(200, "Done (the engine host carries it out)", session_schemas.SessionActed)


@bp.post("/whatsapp-sessions/<session_id>/connect")
@selfhosted.operation("connectSession", "Sessions", ACTED, errors=(*SESSION_ERRORS, 503))
@token_required
@live_required
def sessions_connect(session_id: str):
    """Start connection

    The session shows a QR code (status `connecting`) unless it is paired.
    """
    session = svc.session_connect(current_user(), session_id)
    message = "Session is already connected" if session.status == "connected" else "Connecting; get the QR code next"
    return {"success": True, "sessionId": session.id, "status": session.status, "message": message}


@bp.post("/whatsapp-sessions/<session_id>/disconnect")
@selfhosted.operation("disconnectSession", "Sessions", ACTED, errors=(*SESSION_ERRORS, 503))
@token_required
@live_required
def sessions_disconnect(session_id: str):
    """Disconnect

    The phone stays linked.
    """
    session = svc.session_disconnect(current_user(), session_id)
    return {"success": True, "sessionId": session.id, "message": "Disconnecting session; the phone stays linked"}


@bp.get("/whatsapp-sessions/<session_id>/qrcode")
@selfhosted.operation(
    "getSessionQrCode",
    "Sessions",
    Answer(200, "The QR code as a PNG data URL, or null with a message", session_schemas.QrCode),
    errors=SESSION_ERRORS,
)
@token_required
def sessions_qrcode(session_id: str):
    """Get QR code (when CONNECTING)

    `qrCode` is a PNG data URL; null, with a message, when there is none to scan.
    """
    session = svc.session_qr(current_user(), session_id)
    if session.has_qr:
        return {
            "qrCode": session.qr_code,
            "status": session.status,
            "expiresAt": isoformat(session.qr_expires_at),
            **simulator_pair_url(session),
        }
    message = (
        "Session is already connected; no QR code is needed"
        if session.status == "connected"
        else f"No QR code to scan while the session is {session.status}; POST …/connect for one"
    )
    return {
        "qrCode": None,
        "status": session.status,
        "expiresAt": None,
        "message": message,
        "reason": session.status_reason,
        **simulator_pair_url(session),
    }


# -- send-message -----------------------------------------------------------------------------


SENT = (
    Answer(200, "Sent", Sent),
    Answer(202, "Accepted and queued (or scheduled with `sendAt`)", Sent),
)


@bp.post("/send-message")
@selfhosted.operation(
    "sendMessage", "Messages", *SENT, errors=(*WITH_BODY, *SESSION_ERRORS, 402, 409, 415, 502, 503, 504)
)
@session_required
@selfhosted.request(
    body=SendMessage,
    example={"to": "14155551234", "text": "Hello from the API!"},
    query=schemas.SessionQuery,
    headers=IdempotencyKey,
    max_bytes="SEND_MAX_REQUEST_BYTES",
)
def send_message(body: dict, query: dict, headers: dict):
    """Send a message

    The type is detected from the payload: `text`, or one of `image`, `video`, `audio`,
    `document`, `sticker` (each `{url, caption}`), `location`, `contact`, `poll`; `quoted`,
    `viewOnce` and `mentions` modify it. 200 when sent, 202 while still queued.
    """
    message = message_send(
        current_user(),
        session_id(),
        to=body["to"],
        content=body,
        idempotency_key=headers.get("Idempotency-Key"),
        simulated=in_test_mode(),
        send_at=body.get("sendAt"),
    )
    answer, status = send_response(message_wait(message, current_app.config["SEND_WAIT_SECONDS"]))
    if status >= 400:  # accepted, then failed on WhatsApp's side
        body, status = error_body(answer["code"], status, answer["message"], answer)
        return jsonify(body), status
    return answer, status


# -- contacts and numbers ---------------------------------------------------------------------


@bp.get("/contacts")
@selfhosted.operation(
    "listContacts",
    "Contacts",
    Answer(200, "One page of contacts, by name", contact_schemas.ContactPage),
    errors=(422, *SESSION_ERRORS),
)
@session_required
@selfhosted.request(query=schemas.ContactsPageQuery)
def contacts_index(query: dict):
    """List contacts

    The phone's address book and everyone who wrote, by name; `search`, `page`, `limit`.
    """
    page = contacts_list(
        current_user(), session_id(), search=query.get("search"), page=query.get("page"), limit=query.get("limit")
    )
    return {"success": True, **page}


@bp.put("/contacts")
@selfhosted.operation(
    "upsertContact",
    "Contacts",
    Answer(200, "Saved", contact_schemas.ContactView),
    Answer(201, "Saved, new", contact_schemas.ContactView),
    errors=(*WITH_BODY, *SESSION_ERRORS),
)
@session_required
@live_required
@selfhosted.request(body=schemas.ContactUpsert, query=schemas.SessionQuery)
def contacts_upsert(body: dict, query: dict):
    """Upsert contact

    `{"phone", "name", "tags", "notes"}`: the contact with this number is created (201) or
    changed (200).
    """
    changes = {name: value for name, value in body.items() if name != "phone"}
    saved, created = contact_upsert(current_user(), session_id(), body["phone"], changes)
    return {"success": True, "contact": saved.to_dict()}, 201 if created else 200


@bp.get("/contacts/<phone>")
@selfhosted.operation(
    "getContact", "Contacts", Answer(200, "The contact", contact_schemas.ContactView), errors=(422, *SESSION_ERRORS)
)
@session_required
@selfhosted.request(query=schemas.SessionQuery)
def contacts_show(phone: str, query: dict):
    """Get contact"""
    return {"success": True, "contact": contact_get(current_user(), session_id(), phone).to_dict()}


@bp.get("/on-whatsapp/<phone>")
@selfhosted.operation(
    "checkNumber",
    "Contacts",
    Answer(200, "Whether the number is on WhatsApp (answers are cached a while)", contact_schemas.NumberAnswer),
    errors=(422, *SESSION_ERRORS, *ENGINE_CALL),
)
@session_required
@selfhosted.request(query=schemas.SessionQuery)
def on_whatsapp(phone: str, query: dict):
    """Check if number is on WhatsApp

    `{phone, exists, waId, cached}`.
    """
    [answer] = numbers_check(current_user(), session_id(), [phone], field="phone")
    return {"success": True, **answer}


# -- groups -----------------------------------------------------------------------------------


@bp.get("/groups")
@selfhosted.operation(
    "listGroups",
    "Groups",
    Answer(200, "The groups the phone is in", group_schemas.GroupList),
    errors=(422, *SESSION_ERRORS, *ENGINE_CALL),
)
@session_required
@selfhosted.request(query=schemas.SessionQuery)
def groups_index(query: dict):
    """List groups"""
    found = group_svc.groups_list(current_user(), session_id())
    return {"success": True, "count": len(found), "groups": found}


@bp.post("/groups")
@selfhosted.operation(
    "createGroup",
    "Groups",
    Answer(201, "Created", group_schemas.GroupView),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@session_required
@live_required
@selfhosted.request(body=group_schemas.GroupCreate, query=schemas.SessionQuery)
def groups_create(body: dict, query: dict):
    """Create group

    `{"name", "participants"}`: a name and 1 to 256 phone numbers; the session's phone creates it.
    """
    group = group_svc.group_create(current_user(), session_id(), name=body["name"], participants=body["participants"])
    return {"success": True, "group": group}, 201


@bp.get("/groups/<group_id>")
@selfhosted.operation(
    "getGroup",
    "Groups",
    Answer(200, "Name, topic, owner, creation time and participants", group_schemas.GroupView),
    errors=(422, *SESSION_ERRORS, *ENGINE_CALL),
)
@session_required
@selfhosted.request(query=schemas.SessionQuery)
def groups_show(group_id: str, query: dict):
    """Get group metadata"""
    return {"success": True, "group": group_svc.group_info(current_user(), session_id(), group_id)}


@bp.get("/groups/<group_id>/participants")
@selfhosted.operation(
    "listGroupParticipants",
    "Groups",
    Answer(200, "Who is in the group, with their role", group_schemas.ParticipantList),
    errors=(422, *SESSION_ERRORS, *ENGINE_CALL),
)
@session_required
@selfhosted.request(query=schemas.SessionQuery)
def groups_participants(group_id: str, query: dict):
    """List participants"""
    found = group_svc.group_info(current_user(), session_id(), group_id)["participants"]
    return {"success": True, "count": len(found), "participants": found}


@bp.post("/groups/<group_id>/participants/<action>")
@selfhosted.operation(
    "changeGroupParticipants",
    "Groups",
    Answer(200, "Each participant's outcome", group_schemas.ParticipantResults),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@session_required
@live_required
@selfhosted.request(
    body=group_schemas.ParticipantsChange, query=schemas.SessionQuery, path={"action": schemas.ParticipantAction}
)
def groups_participants_change(group_id: str, action: str, body: dict, query: dict):
    """Add or remove participants

    `{"participants": [...]}`: 1 to 256 phone numbers.
    """
    results = group_svc.group_participants_change(current_user(), session_id(), group_id, action, body["participants"])
    return {"success": True, "results": results}


@bp.post("/groups/<group_id>/leave")
@selfhosted.operation(
    "leaveGroup",
    "Groups",
    Answer(200, "Left", group_schemas.GroupLeft),
    errors=(422, *SESSION_ERRORS, *ENGINE_CALL),
)
@session_required
@live_required
@selfhosted.request(query=schemas.SessionQuery)
def groups_leave(group_id: str, query: dict):
    """Leave group"""
    group_svc.group_leave(current_user(), session_id(), group_id)
    return {"success": True, "groupId": group_id, "message": "Left the group"}


# -- this document ----------------------------------------------------------------------------


@bp.get("/selfhosted/openapi.json")
@selfhosted.operation(
    "openapi", "Service", Answer(200, "The OpenAPI 3.1 document of this dialect", OpenApiDocument), security=[]
)
def openapi():
    """This document

    The self-hosted gateway dialect's OpenAPI 3.1 document, with this server's /api/v1 as its server.
    """
    document = selfhosted.document(current_app, request.url_root.rstrip("/") + PREFIX)
    # Its paths are relative to its base URL, as the gateway's own document writes them.
    document["paths"] = {path.removeprefix(PREFIX): item for path, item in document["paths"].items()}
    response = jsonify(document)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
