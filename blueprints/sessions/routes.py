from flask import Response, current_app, stream_with_context

from blueprints.common import (
    allowed_session_ids,
    auth_required,
    current_user,
    in_test_mode,
    live_required,
    send_response,
    simulator_pair_url,
    status_poll_rate_limit,
    unrestricted_required,
)
from blueprints.contract.native import AUTHED, ENGINE, ENGINE_CALL, SESSION_ERRORS, WITH_BODY, native
from blueprints.contract.wiring import Answer
from blueprints.schemas import chats as chat_schemas
from blueprints.schemas import contacts as contact_schemas
from blueprints.schemas import groups as group_schemas
from blueprints.schemas import sessions as schemas
from blueprints.schemas.messages import SEND_ANSWERS, SEND_ERRORS, IdempotencyKey, SendAudio, SendMedia, SendMessage
from blueprints.sessions import bp
from models.base import isoformat
from services.contacts.book import contact_get, contact_upsert, contacts_list
from services.events.stream import stream_events, stream_position
from services.governor import pace as pacing
from services.messaging.backfill import history_backfill
from services.messaging.chats import chats_list
from services.messaging.outgoing import explicit_audio_body, explicit_media_body
from services.messaging.sending import message_send, message_wait
from services.sessions import groups as group_svc
from services.sessions import lifecycle as svc
from services.sessions import presence as presence_svc
from services.sessions.numbers import numbers_check


@bp.post("")
@native.operation(
    "createSession",
    "Sessions",
    Answer(201, "Created; its QR code follows", schemas.SessionCreated),
    errors=(*WITH_BODY, *AUTHED, 403, *ENGINE),
)
@auth_required
@live_required
@native.request(body=schemas.SessionCreate, required=False)
def create(body: dict):
    """Create a session

    The engine starts pairing it at once: get its QR code next. A full account gets
    `403 SESSION_LIMIT_REACHED`.
    """
    unrestricted_required("create sessions")
    session = svc.session_create(current_user(), name=body.get("name"), description=body.get("description"))
    return {
        "success": True,
        "sessionId": session.id,
        "name": session.name,
        "status": session.status,
        "message": "Session created. Generating QR code...",
    }, 201


@bp.get("")
@native.operation("listSessions", "Sessions", Answer(200, "Your sessions", schemas.SessionList), errors=AUTHED)
@auth_required
def index():
    """List sessions"""
    sessions = [s.to_dict() for s in svc.session_list(current_user(), only=allowed_session_ids())]
    return {"sessions": sessions, "total": len(sessions)}


@bp.get("/<session_id>")
@native.operation("getSession", "Sessions", Answer(200, "The session", schemas.SessionDetail), errors=SESSION_ERRORS)
@auth_required
def show(session_id: str):
    """Show a session"""
    return svc.session_get(current_user(), session_id).to_detail_dict()


@bp.patch("/<session_id>")
@native.operation(
    "updateSession",
    "Sessions",
    Answer(200, "Changed", schemas.SessionChanged),
    errors=(*WITH_BODY, *SESSION_ERRORS),
)
@auth_required
@live_required
@native.request(body=schemas.SessionChange)
def update(session_id: str, body: dict):
    """Rename a session

    Change its name, its description, or both.
    """
    session = svc.session_update(current_user(), session_id, changes=body)
    return {"success": True, "session": session.to_detail_dict()}


ACTED = Answer(200, "Done (the engine host carries it out)", schemas.SessionActed)


@bp.post("/<session_id>/connect")
@native.operation("connectSession", "Sessions", ACTED, errors=(*SESSION_ERRORS, *ENGINE))
@auth_required
@live_required
def connect(session_id: str):
    """Bring a session online

    A new QR code if it is not paired.
    """
    session = svc.session_connect(current_user(), session_id)
    if session.status == "connected":
        message = "Session is already connected"
    else:
        message = "Connecting session. QR code will be generated..."
    return {"success": True, "sessionId": session.id, "status": session.status, "message": message}


@bp.get("/<session_id>/qr")
@native.operation(
    "getSessionQr",
    "Sessions",
    Answer(200, "The QR code as a PNG data URL, or null with a message", schemas.QrCode),
    errors=SESSION_ERRORS,
)
@auth_required
def qr(session_id: str):
    """The QR code to scan

    As a PNG data URL (with the simulator, also the URL it encodes). Waits up to
    `QR_WAIT_SECONDS` for the first QR code of a new session.
    """
    session = svc.session_qr(current_user(), session_id)
    if session.has_qr:
        return {
            "qrCode": session.qr_code,
            "status": session.status,
            "expiresAt": isoformat(session.qr_expires_at),
            **simulator_pair_url(session),
        }
    messages = {
        "connected": "Session is already connected; no QR code is needed",
        "connecting": "The QR code is still being generated; try again in a moment",
        "reconnecting": "Session is reconnecting with its linked phone; no QR code is needed",
        "error": "No QR code: the session failed (see reason). POST /api/sessions/{id}/connect to try again now",
    }
    message = messages.get(
        session.status, "No QR code: the session is offline. POST /api/sessions/{id}/connect for a new one"
    )
    return {
        "qrCode": None,
        "status": session.status,
        "expiresAt": None,
        "message": message,
        "reason": session.status_reason,
        **simulator_pair_url(session),
    }


@bp.post("/<session_id>/pair-code")
@native.operation(
    "getSessionPairCode",
    "Sessions",
    Answer(200, "The code to enter on the phone", schemas.PairCode),
    errors=(*WITH_BODY, *SESSION_ERRORS, 409, 503, 504),
)
@auth_required
@live_required
@native.request(body=schemas.PairCodeRequest)
def pair_code(session_id: str, body: dict):
    """Link by phone number

    Instead of a QR scan, while the session shows a QR code (`409 NOT_PAIRING` otherwise).
    """
    code = svc.session_pair_code(current_user(), session_id, body["phone"])
    return {
        "success": True,
        "sessionId": session_id,
        "code": code,
        "message": "On that phone: WhatsApp → Linked devices → Link a device → Link with phone number instead, "
        "then enter this code",
    }


@bp.get("/<session_id>/status")
@native.operation(
    "getSessionStatus", "Sessions", Answer(200, "The status", schemas.SessionState), errors=SESSION_ERRORS
)
@status_poll_rate_limit
@auth_required
def status(session_id: str):
    """A session's status"""
    return svc.session_get(current_user(), session_id).to_status_dict()


@bp.post("/<session_id>/disconnect")
@native.operation("disconnectSession", "Sessions", ACTED, errors=(*SESSION_ERRORS, *ENGINE))
@auth_required
@live_required
def disconnect(session_id: str):
    """Take a session offline

    The phone stays linked.
    """
    session = svc.session_disconnect(current_user(), session_id)
    return {"success": True, "sessionId": session.id, "message": "Disconnecting session; the phone stays linked"}


@bp.post("/<session_id>/logout")
@native.operation("logoutSession", "Sessions", ACTED, errors=(*SESSION_ERRORS, *ENGINE))
@auth_required
@live_required
def logout(session_id: str):
    """Unlink the phone

    A new QR scan is needed to use the session again.
    """
    session = svc.session_logout(current_user(), session_id)
    return {"success": True, "sessionId": session.id, "message": "Logging out; the phone will be unlinked"}


@bp.delete("/<session_id>")
@native.operation(
    "deleteSession",
    "Sessions",
    Answer(200, "Deleted; the device is unlinked", schemas.SessionDeleted),
    errors=(*SESSION_ERRORS, *ENGINE),
)
@auth_required
@live_required
def delete(session_id: str):
    """Delete a session"""
    svc.session_delete(current_user(), session_id)
    return {"success": True, "sessionId": session_id, "message": "Session deleted"}


@bp.post("/<session_id>/send")
@native.operation("sendMessage", "Messages", *SEND_ANSWERS, errors=SEND_ERRORS)
@auth_required
@native.request(
    body=SendMessage,
    example={"to": "919876543210", "message": "Hello from wagate!"},
    headers=IdempotencyKey,
    max_bytes="SEND_MAX_REQUEST_BYTES",  # media inline as data URLs
)
def send(session_id: str, body: dict, headers: dict):
    """Send a message

    Any kind, text by default. Waits up to `SEND_WAIT_SECONDS` for the engine: 200 when sent,
    202 while still queued, or the failure (400 for the client's errors, 502/503/504 for
    WhatsApp's side, see the refund matrix). `X-RateLimit-*` on the reply describe the plan's
    message quota after this send.
    """
    return _send(session_id, body, body, headers)


@bp.post("/<session_id>/send/media")
@native.operation("sendMedia", "Messages", *SEND_ANSWERS, errors=SEND_ERRORS)
@auth_required
@native.request(body=SendMedia, headers=IdempotencyKey, max_bytes="SEND_MAX_REQUEST_BYTES")
def send_media(session_id: str, body: dict, headers: dict):
    """Send media (explicit form)

    Wamux's form of an image, video, document or sticker send; answers as `POST …/send`.
    """
    return _send(session_id, body, explicit_media_body(body), headers)


@bp.post("/<session_id>/send/audio")
@native.operation("sendAudio", "Messages", *SEND_ANSWERS, errors=SEND_ERRORS)
@auth_required
@native.request(body=SendAudio, headers=IdempotencyKey, max_bytes="SEND_MAX_REQUEST_BYTES")
def send_audio(session_id: str, body: dict, headers: dict):
    """Send audio or a voice note (explicit form)

    Wamux's form: `ptt: true` sends a voice note (Ogg Opus); answers as `POST …/send`.
    """
    return _send(session_id, body, explicit_audio_body(body), headers)


def _send(session_id: str, body: dict, content: dict, headers: dict):
    message = message_send(
        current_user(),
        session_id,
        to=body["to"],
        content=content,
        idempotency_key=headers.get("Idempotency-Key"),
        simulated=in_test_mode(),
        send_at=body.get("sendAt"),
    )
    return send_response(message_wait(message, current_app.config["SEND_WAIT_SECONDS"]))


PACE = Answer(200, "Its pace settings, queue depth, next send, today's count and ceiling", schemas.PaceView)


@bp.get("/<session_id>/pace")
@native.operation("getSessionPace", "Sessions", PACE, errors=SESSION_ERRORS)
@auth_required
def pace(session_id: str):
    """A session's pace and send queue

    Its pace settings and its send queue: depth, next send, today's count and ceiling.
    """
    return {"success": True, **pacing.pace_show(current_user(), session_id)}


@bp.put("/<session_id>/pace")
@native.operation("setSessionPace", "Sessions", PACE, errors=(*WITH_BODY, *SESSION_ERRORS))
@auth_required
@live_required
@native.request(body=schemas.PaceChange)
def pace_update(session_id: str, body: dict):
    """Change a session's pace

    Any of the settings; null restores a default (for the quiet hours: none).
    """
    return {"success": True, **pacing.pace_update(current_user(), session_id, body)}


@bp.post("/<session_id>/resume")
@native.operation(
    "resumeSession", "Sessions", Answer(200, "Sending again", schemas.PaceView), errors=(*SESSION_ERRORS, 409)
)
@auth_required
@live_required
def resume(session_id: str):
    """Resume a paused session's sending

    After the governor (or WhatsApp) paused it; `409 NOT_PAUSED` otherwise.
    """
    return {"success": True, **pacing.session_resume(current_user(), session_id)}


@bp.post("/<session_id>/presence")
@native.operation(
    "sendPresence",
    "Contacts",
    Answer(200, "Shown", contact_schemas.PresenceShown),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@live_required
@native.request(body=contact_schemas.PresenceShow)
def presence(session_id: str, body: dict):
    """Show typing, recording or online

    `typing`, `recording` or `paused` in the chat `to` (a number or a group id); `available`
    or `unavailable` to everyone (without `to`).
    """
    shown = presence_svc.presence_send(current_user(), session_id, to=body.get("to"), state=body["state"])
    return {"success": True, **shown}


@bp.post("/<session_id>/presence/subscribe")
@native.operation(
    "subscribePresence",
    "Contacts",
    Answer(200, "Following; `presence_update` events follow", contact_schemas.PresenceFollowed),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@live_required
@native.request(body=contact_schemas.PresenceFollow)
def presence_subscribe(session_id: str, body: dict):
    """Follow a contact's online/offline"""
    phone = presence_svc.presence_subscribe(current_user(), session_id, body["phone"])
    return {"success": True, "sessionId": session_id, "phone": phone}


@bp.get("/<session_id>/stream")
@native.operation(
    "streamSessionEvents",
    "Sessions",
    Answer(
        200,
        "An endless event stream: `id:`, `event:` (qr, connected, disconnected, reconnecting, message, "
        "message_status, message_reaction, poll_vote, presence_update) and `data:` (the Socket.IO payload as JSON)",
        schemas.StreamEvent,
        media_type="text/event-stream",
    ),
    errors=(400, *SESSION_ERRORS),
)
@auth_required
@native.request(headers=schemas.LastEventId)
def stream(session_id: str, headers: dict):
    """Live events (Server-Sent Events)

    The session's qr, connected, disconnected, reconnecting, message and message_status events
    (and more), each with its event log cursor as its id. Reconnect with `Last-Event-ID` to
    get the events missed, in order (kept `EVENT_RETENTION_DAYS`).
    """
    user = current_user()
    svc.session_get(user, session_id)
    after = stream_position(user.id, headers.get("Last-Event-ID"))
    heartbeat = current_app.config["STREAM_HEARTBEAT_SECONDS"]
    body = stream_events(user.id, session_id, after, heartbeat_seconds=heartbeat)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(body), mimetype="text/event-stream", headers=headers)


@bp.get("/<session_id>/on-whatsapp/<phone>")
@native.operation(
    "checkNumber",
    "Contacts",
    Answer(200, "The answer (kept `NUMBER_CHECK_CACHE_SECONDS`)", contact_schemas.NumberAnswer),
    errors=(400, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@native.request()
def on_whatsapp(session_id: str, phone: str):
    """Is this number on WhatsApp?

    `{phone, exists, waId, cached}`; answers are cached a while.
    """
    [answer] = numbers_check(current_user(), session_id, [phone], field="phone")
    return {"success": True, **answer}


@bp.post("/<session_id>/on-whatsapp")
@native.operation(
    "checkNumbers",
    "Contacts",
    Answer(200, "One answer per number, in the order given", contact_schemas.NumberAnswers),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@native.request(body=contact_schemas.NumbersCheck)
def on_whatsapp_batch(session_id: str, body: dict):
    """Check up to 100 numbers"""
    results = numbers_check(current_user(), session_id, body["phones"])
    return {"success": True, "count": len(results), "results": results}


@bp.get("/<session_id>/contacts")
@native.operation(
    "listContacts",
    "Contacts",
    Answer(200, "One page of contacts, by name", contact_schemas.ContactPage),
    errors=(400, *SESSION_ERRORS),
)
@auth_required
@native.request(query=contact_schemas.ContactsQuery)
def contacts(session_id: str, query: dict):
    """List contacts

    The phone's address book (synced at each login) and everyone who wrote, by name.
    """
    page = contacts_list(
        current_user(), session_id, search=query.get("search"), page=query.get("page"), limit=query.get("limit")
    )
    return {"success": True, **page}


CONTACT = Answer(200, "The contact", contact_schemas.ContactView)


@bp.get("/<session_id>/contacts/<phone>")
@native.operation("getContact", "Contacts", CONTACT, errors=(400, *SESSION_ERRORS))
@auth_required
@native.request()
def contact(session_id: str, phone: str):
    """Show a contact

    By phone number or by LID (`<digits>@lid`): names, tags, notes, when they last wrote.
    """
    return {"success": True, "contact": contact_get(current_user(), session_id, phone).to_dict()}


@bp.put("/<session_id>/contacts/<phone>")
@native.operation(
    "saveContact",
    "Contacts",
    Answer(200, "Saved", contact_schemas.ContactView),
    Answer(201, "Saved, new", contact_schemas.ContactView),
    errors=(*WITH_BODY, *SESSION_ERRORS),
)
@auth_required
@live_required
@native.request(body=contact_schemas.ContactChange)
def contact_save(session_id: str, phone: str, body: dict):
    """Save a contact's name, tags and notes

    201 when the contact is new. An address-book sync never overwrites the name saved here.
    """
    saved, created = contact_upsert(current_user(), session_id, phone, body)
    return {"success": True, "contact": saved.to_dict()}, 201 if created else 200


@bp.get("/<session_id>/chats")
@native.operation(
    "listChats",
    "Contacts",
    Answer(200, "One page of chats, the most recently active first", chat_schemas.ChatPage),
    errors=(400, *SESSION_ERRORS),
)
@auth_required
@native.request(query=chat_schemas.ChatsQuery)
def chats(session_id: str, query: dict):
    """List chats

    Every contact and group the session has messages with: its last message and how many of
    the contact's live messages came since the session last wrote there (`unreadCount`).
    """
    page = chats_list(current_user(), session_id, page=query.get("page"), limit=query.get("limit"))
    return {"success": True, **page}


@bp.post("/<session_id>/chats/<chat>/history")
@native.operation(
    "backfillHistory",
    "Contacts",
    Answer(202, "Asked; `history_progress` and `history_completed` events follow", chat_schemas.HistoryRequested),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@live_required
@native.request(body=chat_schemas.HistoryRequest)
def chat_history(session_id: str, chat: str, body: dict):
    """Backfill a chat's history

    Asks the phone for the chat's older messages (`count` before the oldest stored, or all
    `since` a time); they are stored as history, without `message` events unless `notify`.
    """
    asked = history_backfill(
        current_user(),
        session_id,
        chat,
        count=body.get("count"),
        since=body.get("since"),
        notify=bool(body.get("notify")),
    )
    return {"success": True, **asked}, 202


@bp.get("/<session_id>/groups")
@native.operation(
    "listGroups",
    "Groups",
    Answer(200, "The groups the phone is in", group_schemas.GroupList),
    errors=(400, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
def groups(session_id: str):
    """List groups

    The groups the session's phone is in.
    """
    found = group_svc.groups_list(current_user(), session_id)
    return {"success": True, "count": len(found), "groups": found}


@bp.post("/<session_id>/groups")
@native.operation(
    "createGroup",
    "Groups",
    Answer(201, "Created", group_schemas.GroupView),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@live_required
@native.request(body=group_schemas.GroupCreate)
def group_create(session_id: str, body: dict):
    """Create a group

    The session's phone is its creator.
    """
    group = group_svc.group_create(current_user(), session_id, name=body["name"], participants=body["participants"])
    return {"success": True, "group": group}, 201


@bp.get("/<session_id>/groups/<group_id>")
@native.operation(
    "getGroup",
    "Groups",
    Answer(200, "Name, topic, owner, creation time and participants", group_schemas.GroupView),
    errors=(400, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@native.request()
def group(session_id: str, group_id: str):
    """Show a group"""
    return {"success": True, "group": group_svc.group_info(current_user(), session_id, group_id)}


@bp.get("/<session_id>/groups/<group_id>/participants")
@native.operation(
    "listGroupParticipants",
    "Groups",
    Answer(200, "Who is in the group, with their role", group_schemas.ParticipantList),
    errors=(400, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@native.request()
def group_participants(session_id: str, group_id: str):
    """A group's participants

    Who is in the group, with their role (member, admin, superadmin).
    """
    found = group_svc.group_info(current_user(), session_id, group_id)["participants"]
    return {"success": True, "count": len(found), "participants": found}


@bp.post("/<session_id>/groups/<group_id>/participants/<action>")
@native.operation(
    "changeGroupParticipants",
    "Groups",
    Answer(200, "Each participant's outcome", group_schemas.ParticipantResults),
    errors=(*WITH_BODY, *SESSION_ERRORS, *ENGINE_CALL),
)
@auth_required
@live_required
@native.request(body=group_schemas.ParticipantsChange, path={"action": group_schemas.GroupAction})
def group_participants_change(session_id: str, group_id: str, action: str, body: dict):
    """Add, remove, promote or demote participants"""
    results = group_svc.group_participants_change(current_user(), session_id, group_id, action, body["participants"])
    return {"success": True, "results": results}


INVITE_LINK = Answer(200, "The invite link", group_schemas.InviteLink)


@bp.get("/<session_id>/groups/<group_id>/invite-link")
@native.operation("getGroupInviteLink", "Groups", INVITE_LINK, errors=(400, *SESSION_ERRORS, *ENGINE_CALL))
@auth_required
@native.request()
def group_invite_link(session_id: str, group_id: str):
    """A group's invite link

    Admins only.
    """
    return {"success": True, "inviteLink": group_svc.group_invite_link(current_user(), session_id, group_id)}


@bp.post("/<session_id>/groups/<group_id>/invite-link/revoke")
@native.operation("revokeGroupInviteLink", "Groups", INVITE_LINK, errors=(400, *SESSION_ERRORS, *ENGINE_CALL))
@auth_required
@live_required
@native.request()
def group_invite_link_revoke(session_id: str, group_id: str):
    """Replace a group's invite link

    The old one stops working; the answer is the new one.
    """
    link = group_svc.group_invite_link(current_user(), session_id, group_id, revoke=True)
    return {"success": True, "inviteLink": link}


@bp.post("/<session_id>/groups/<group_id>/leave")
@native.operation(
    "leaveGroup", "Groups", Answer(200, "Left", group_schemas.GroupLeft), errors=(400, *SESSION_ERRORS, *ENGINE_CALL)
)
@auth_required
@live_required
@native.request()
def group_leave(session_id: str, group_id: str):
    """Leave a group

    The session's phone leaves it.
    """
    group_svc.group_leave(current_user(), session_id, group_id)
    return {"success": True, "groupId": group_id, "message": "Left the group"}
