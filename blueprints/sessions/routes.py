from flask import Response, current_app, jsonify, request, stream_with_context

from blueprints.common import (
    allowed_session_ids,
    auth_required,
    current_user,
    in_test_mode,
    json_body,
    live_required,
    send_response,
    simulator_pair_url,
    status_poll_rate_limit,
    unrestricted_required,
)
from blueprints.sessions import bp
from models.base import isoformat
from services.contacts.book import contact_get, contact_upsert, contacts_list
from services.events.stream import stream_events, stream_position
from services.governor import pace as pacing
from services.messaging.outgoing import explicit_audio_body, explicit_media_body
from services.messaging.sending import message_send, message_wait
from services.sessions import groups as group_svc
from services.sessions import lifecycle as svc
from services.sessions import presence as presence_svc
from services.sessions.numbers import numbers_check


@bp.post("")
@auth_required
@live_required
def create():
    """Create a session; the engine starts pairing it right away."""
    unrestricted_required("create sessions")
    body = json_body(required=False)
    session = svc.session_create(current_user(), name=body.get("name"), description=body.get("description"))
    return jsonify(
        success=True,
        sessionId=session.id,
        name=session.name,
        status=session.status,
        message="Session created. Generating QR code...",
    ), 201


@bp.get("")
@auth_required
def index():
    """List the caller's sessions."""
    sessions = [s.to_dict() for s in svc.session_list(current_user(), only=allowed_session_ids())]
    return jsonify(sessions=sessions, total=len(sessions))


@bp.get("/<session_id>")
@auth_required
def show(session_id: str):
    """Show one session."""
    return jsonify(svc.session_get(current_user(), session_id).to_detail_dict())


@bp.patch("/<session_id>")
@auth_required
@live_required
def update(session_id: str):
    """Rename a session or change its description."""
    session = svc.session_update(current_user(), session_id, changes=json_body())
    return jsonify(success=True, session=session.to_detail_dict())


@bp.post("/<session_id>/connect")
@auth_required
@live_required
def connect(session_id: str):
    """Bring a session online again (a new QR if it is not paired)."""
    session = svc.session_connect(current_user(), session_id)
    if session.status == "connected":
        return jsonify(
            success=True, sessionId=session.id, status=session.status, message="Session is already connected"
        )
    return jsonify(
        success=True,
        sessionId=session.id,
        status=session.status,
        message="Connecting session. QR code will be generated...",
    )


@bp.get("/<session_id>/qr")
@auth_required
def qr(session_id: str):
    """The current QR code to scan, as a PNG data URL (with the simulator, also the URL it encodes)."""
    session = svc.session_qr(current_user(), session_id)
    if session.has_qr:
        return jsonify(
            qrCode=session.qr_code,
            status=session.status,
            expiresAt=isoformat(session.qr_expires_at),
            **simulator_pair_url(session),
        )
    messages = {
        "connected": "Session is already connected; no QR code is needed",
        "connecting": "The QR code is still being generated; try again in a moment",
        "reconnecting": "Session is reconnecting with its linked phone; no QR code is needed",
        "error": "No QR code: the session failed (see reason). POST /api/sessions/{id}/connect to try again now",
    }
    message = messages.get(
        session.status, "No QR code: the session is offline. POST /api/sessions/{id}/connect for a new one"
    )
    return jsonify(
        qrCode=None,
        status=session.status,
        expiresAt=None,
        message=message,
        reason=session.status_reason,
        **simulator_pair_url(session),
    )


@bp.post("/<session_id>/pair-code")
@auth_required
@live_required
def pair_code(session_id: str):
    """Link the session by phone number instead of a QR scan: {"phone"} -> the code to enter."""
    code = svc.session_pair_code(current_user(), session_id, json_body().get("phone"))
    return jsonify(
        success=True,
        sessionId=session_id,
        code=code,
        message="On that phone: WhatsApp → Linked devices → Link a device → Link with phone number instead, "
        "then enter this code",
    )


@bp.get("/<session_id>/status")
@status_poll_rate_limit
@auth_required
def status(session_id: str):
    """The session's connection status."""
    return jsonify(svc.session_get(current_user(), session_id).to_status_dict())


@bp.post("/<session_id>/disconnect")
@auth_required
@live_required
def disconnect(session_id: str):
    """Go offline but keep the phone linked."""
    session = svc.session_disconnect(current_user(), session_id)
    return jsonify(success=True, sessionId=session.id, message="Disconnecting session; the phone stays linked")


@bp.post("/<session_id>/logout")
@auth_required
@live_required
def logout(session_id: str):
    """Unlink the phone; a new QR scan is needed to use the session again."""
    session = svc.session_logout(current_user(), session_id)
    return jsonify(success=True, sessionId=session.id, message="Logging out; the phone will be unlinked")


@bp.delete("/<session_id>")
@auth_required
@live_required
def delete(session_id: str):
    """Delete a session for good."""
    svc.session_delete(current_user(), session_id)
    return jsonify(success=True, sessionId=session_id, message="Session deleted")


@bp.post("/<session_id>/send")
@auth_required
def send(session_id: str):
    """Send a message of any kind (text by default); answers once the engine has, or 202 while queued."""
    return _send(session_id, lambda body: body)


@bp.post("/<session_id>/send/media")
@auth_required
def send_media(session_id: str):
    """Wamux's form: {to, mediaUrl, mediaType: image|video|document|sticker, caption, filename}."""
    return _send(session_id, explicit_media_body)


@bp.post("/<session_id>/send/audio")
@auth_required
def send_audio(session_id: str):
    """Wamux's form: {to, audioUrl, ptt} (ptt: true sends a voice note)."""
    return _send(session_id, explicit_audio_body)


def _send(session_id: str, content_of):
    request.max_content_length = current_app.config["SEND_MAX_REQUEST_BYTES"]  # media as data URLs
    body = json_body()
    message = message_send(
        current_user(),
        session_id,
        to=body.get("to"),
        content=content_of(body),
        idempotency_key=request.headers.get("Idempotency-Key"),
        simulated=in_test_mode(),
        send_at=body.get("sendAt"),
    )
    return send_response(message_wait(message, current_app.config["SEND_WAIT_SECONDS"]))


@bp.get("/<session_id>/pace")
@auth_required
def pace(session_id: str):
    """The session's pace settings and its send queue: depth, next send, today's count and ceiling."""
    return jsonify(success=True, **pacing.pace_show(current_user(), session_id))


@bp.put("/<session_id>/pace")
@auth_required
@live_required
def pace_update(session_id: str):
    """Change pace settings: {minGapSeconds, jitterSeconds, perMinute, perDay, warmup, quietStart,
    quietEnd, timezone, typing} (any of them; null restores a default)."""
    return jsonify(success=True, **pacing.pace_update(current_user(), session_id, json_body()))


@bp.post("/<session_id>/resume")
@auth_required
@live_required
def resume(session_id: str):
    """Resume a session's sending after the governor (or WhatsApp) paused it."""
    return jsonify(success=True, **pacing.session_resume(current_user(), session_id))


@bp.post("/<session_id>/presence")
@auth_required
@live_required
def presence(session_id: str):
    """Show typing, recording or paused in a chat ({"to", "state"}), or available/unavailable."""
    body = json_body()
    shown = presence_svc.presence_send(current_user(), session_id, to=body.get("to"), state=body.get("state"))
    return jsonify(success=True, **shown)


@bp.post("/<session_id>/presence/subscribe")
@auth_required
@live_required
def presence_subscribe(session_id: str):
    """Follow a contact's online/offline: {"phone"}; `presence_update` events follow."""
    phone = presence_svc.presence_subscribe(current_user(), session_id, json_body().get("phone"))
    return jsonify(success=True, sessionId=session_id, phone=phone)


@bp.get("/<session_id>/stream")
@auth_required
def stream(session_id: str):
    """Server-Sent Events for one session: qr, connected, disconnected, reconnecting, message,
    message_status. A client reconnecting with Last-Event-ID gets what it missed (kept
    STREAM_RETENTION_SECONDS)."""
    svc.session_get(current_user(), session_id)
    position = stream_position(request.headers.get("Last-Event-ID"))
    body = stream_events(session_id, position, heartbeat_seconds=current_app.config["STREAM_HEARTBEAT_SECONDS"])
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(body), mimetype="text/event-stream", headers=headers)


@bp.get("/<session_id>/on-whatsapp/<phone>")
@auth_required
def on_whatsapp(session_id: str, phone: str):
    """Is this number on WhatsApp? {phone, exists, waId, cached} (answers cached a while)."""
    [answer] = numbers_check(current_user(), session_id, [phone], field="phone")
    return jsonify(success=True, **answer)


@bp.post("/<session_id>/on-whatsapp")
@auth_required
def on_whatsapp_batch(session_id: str):
    """Up to 100 numbers at once: {"phones": [...]} -> {results: [{phone, exists, waId, cached}]}."""
    results = numbers_check(current_user(), session_id, json_body().get("phones"))
    return jsonify(success=True, count=len(results), results=results)


@bp.get("/<session_id>/contacts")
@auth_required
def contacts(session_id: str):
    """The session's contacts by name (?search= &page= &limit=)."""
    args = request.args
    page = contacts_list(
        current_user(), session_id, search=args.get("search"), page=args.get("page"), limit=args.get("limit")
    )
    return jsonify(success=True, **page)


@bp.get("/<session_id>/contacts/<phone>")
@auth_required
def contact(session_id: str, phone: str):
    """One contact: names, tags, notes, when they last wrote."""
    return jsonify(success=True, contact=contact_get(current_user(), session_id, phone).to_dict())


@bp.put("/<session_id>/contacts/<phone>")
@auth_required
@live_required
def contact_save(session_id: str, phone: str):
    """Save a name, tags and notes for a number: {name?, tags?, notes?} (201 when new)."""
    saved, created = contact_upsert(current_user(), session_id, phone, json_body())
    return jsonify(success=True, contact=saved.to_dict()), 201 if created else 200


@bp.get("/<session_id>/groups")
@auth_required
def groups(session_id: str):
    """The groups the session's phone is in."""
    found = group_svc.groups_list(current_user(), session_id)
    return jsonify(success=True, count=len(found), groups=found)


@bp.post("/<session_id>/groups")
@auth_required
@live_required
def group_create(session_id: str):
    """Create a group: {name, participants: [phones]}; the session's phone is its creator."""
    body = json_body()
    group = group_svc.group_create(
        current_user(), session_id, name=body.get("name"), participants=body.get("participants")
    )
    return jsonify(success=True, group=group), 201


@bp.get("/<session_id>/groups/<group_id>")
@auth_required
def group(session_id: str, group_id: str):
    """A group's name, topic, owner, creation time and participants."""
    return jsonify(success=True, group=group_svc.group_info(current_user(), session_id, group_id))


@bp.get("/<session_id>/groups/<group_id>/participants")
@auth_required
def group_participants(session_id: str, group_id: str):
    """Who is in the group, with their role (member, admin, superadmin)."""
    found = group_svc.group_info(current_user(), session_id, group_id)["participants"]
    return jsonify(success=True, count=len(found), participants=found)


@bp.post("/<session_id>/groups/<group_id>/participants/<action>")
@auth_required
@live_required
def group_participants_change(session_id: str, group_id: str, action: str):
    """add, remove, promote or demote: {participants: [phones]} -> each one's outcome."""
    results = group_svc.group_participants_change(
        current_user(), session_id, group_id, action, json_body().get("participants")
    )
    return jsonify(success=True, results=results)


@bp.get("/<session_id>/groups/<group_id>/invite-link")
@auth_required
def group_invite_link(session_id: str, group_id: str):
    """The group's invite link (admins only)."""
    return jsonify(success=True, inviteLink=group_svc.group_invite_link(current_user(), session_id, group_id))


@bp.post("/<session_id>/groups/<group_id>/invite-link/revoke")
@auth_required
@live_required
def group_invite_link_revoke(session_id: str, group_id: str):
    """Make the old invite link stop working; answers the new one."""
    link = group_svc.group_invite_link(current_user(), session_id, group_id, revoke=True)
    return jsonify(success=True, inviteLink=link)


@bp.post("/<session_id>/groups/<group_id>/leave")
@auth_required
@live_required
def group_leave(session_id: str, group_id: str):
    """The session's phone leaves the group."""
    group_svc.group_leave(current_user(), session_id, group_id)
    return jsonify(success=True, groupId=group_id, message="Left the group")
