from uuid import UUID

from flask import jsonify, request

from blueprints.common import allowed_session_ids, auth_required, current_user, json_body, session_allowed
from blueprints.media import media_response
from blueprints.messages import bp
from models.base import isoformat
from services.messaging.history import message_get, message_media, messages_failed, messages_list
from services.messaging.scheduling import scheduled_cancel, scheduled_list, scheduled_move
from services.messaging.stats import stats_get


@bp.get("/stats")
@auth_required
def stats():
    """Totals and the 7-day sent/delivered/read/failed chart."""
    return jsonify(stats_get(current_user()))


@bp.get("/failed")
@auth_required
def failed():
    """The most recently failed messages (?limit=, default 5)."""
    messages = messages_failed(current_user(), request.args.get("limit"), only_sessions=allowed_session_ids())
    return jsonify(success=True, count=len(messages), messages=messages)


@bp.get("")
@auth_required
def index():
    """The message log, newest first (?sessionId= &chat= &status= &direction= &type= &since= &until=
    &cursor= or &page=, &limit=)."""
    args = request.args
    page = messages_list(
        current_user(),
        session_id=args.get("sessionId"),
        status=args.get("status"),
        direction=args.get("direction"),
        chat=args.get("chat"),
        kind=args.get("type"),
        since=args.get("since"),
        until=args.get("until"),
        cursor=args.get("cursor"),
        page=args.get("page"),
        limit=args.get("limit"),
        only_sessions=allowed_session_ids(),
    )
    return jsonify(success=True, **page)


@bp.get("/scheduled")
@auth_required
def scheduled():
    """Scheduled messages, soonest first (?sessionId= &limit=)."""
    messages = scheduled_list(
        current_user(),
        session_id=request.args.get("sessionId"),
        limit=request.args.get("limit"),
        only_sessions=allowed_session_ids(),
    )
    return jsonify(success=True, count=len(messages), messages=[_scheduled_view(m) for m in messages])


# A message id is a UUID: PATCH /api/messages/failed (or /stats, /scheduled) is then a
# method those routes do not take (405), not a search for a message called "failed".
@bp.patch("/<uuid:message_id>")
@auth_required
def reschedule(message_id: UUID):
    """Move a scheduled message: {"sendAt": "2026-12-01T09:30:00+05:30"}."""
    session_allowed(message_get(current_user(), str(message_id)).session_id)
    message = scheduled_move(current_user(), str(message_id), json_body().get("sendAt"))
    return jsonify(success=True, **_scheduled_view(message))


@bp.post("/<message_id>/cancel")
@auth_required
def cancel(message_id: str):
    """Call a scheduled message off: it is never sent (its quota slot comes back)."""
    session_allowed(message_get(current_user(), message_id).session_id)
    message = scheduled_cancel(current_user(), message_id)
    return jsonify(success=True, **_scheduled_view(message))


def _scheduled_view(message) -> dict:
    return message.to_dict() | {"sendAt": isoformat(message.send_after)}


@bp.get("/<message_id>")
@auth_required
def show(message_id: str):
    """One message with its delivery timestamps."""
    message = message_get(current_user(), message_id)
    session_allowed(message.session_id)
    return jsonify(message.to_dict())


@bp.get("/<message_id>/media")
@auth_required
def media(message_id: str):
    """The photo, video, audio or document a message carries; its owner only."""
    message = message_get(current_user(), message_id)
    session_allowed(message.session_id)
    return media_response(message_media(message))
