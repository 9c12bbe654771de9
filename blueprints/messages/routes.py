from flask import jsonify, request, send_file

from blueprints.common import allowed_session_ids, auth_required, current_user, session_allowed
from blueprints.messages import bp
from services.messages import message_get, message_media, messages_failed, messages_list
from services.stats import stats_get


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
    stored = message_media(message)
    response = send_file(
        stored.path, mimetype=stored.mimetype, download_name=stored.filename, as_attachment=not stored.inline, max_age=0
    )
    # A received file is whatever the contact sent: never let a browser run it as a page.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
