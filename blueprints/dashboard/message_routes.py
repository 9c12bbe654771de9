from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.message_view import KIND_LABELS, message_view
from blueprints.dashboard.render import is_htmx, render
from blueprints.media import media_response
from models import Message, MessageStatus
from services.errors import ApiError, NotFound
from services.messaging import history, lifecycle
from services.messaging.watchdog import STALL_LABELS
from services.sessions.lifecycle import session_list

# The log's query parameters; the filters are the ones the form on the page sets.
FILTERS = ("q", "session", "status", "direction", "type", "from", "to")
CURSORS = ("before", "after")

# Every template that shows a message (the log, its detail, a session's recent messages)
# lays out what message_view found in it.
bp.add_app_template_global(message_view)
bp.add_app_template_global(STALL_LABELS, "STALL_LABELS")


@bp.get("/messages")
@login_required
def messages():
    """The message log: filtered, searched and paged, newest first; the Failed and Stalled
    views are status=failed and status=stalled."""
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    # Carried through every link and refresh, but dropped from the URL when unset.
    query = {name: value for name, value in filters.items() if value}
    if request.args.get("limit"):
        query["limit"] = request.args["limit"]
    cursor = {name: request.args[name] for name in CURSORS if request.args.get(name)}
    error = None
    try:
        log = history.messages_search(
            current_user,
            session_id=filters["session"],
            status=filters["status"],
            direction=filters["direction"],
            kind=filters["type"],
            date_from=filters["from"],
            date_to=filters["to"],
            text=filters["q"],
            limit=query.get("limit"),
            **cursor,
        )
    except ApiError as exc:
        log, error = history.MessagePage([]), exc.message
    return render(
        "dashboard/messages.html",
        "dashboard/partials/_message_table.html",
        log=log,
        error=error,
        filters=filters,
        query=query,
        log_url=url_for("dashboard.messages", **query, **cursor),
        failed_count=history.messages_failed_count(current_user),
        stalled_count=history.messages_stalled_count(current_user),
        sessions=session_list(current_user),
        statuses=[*MessageStatus, history.STALLED],
        kinds=KIND_LABELS,
    )


def own_message(message_id: str) -> Message:
    """The logged-in user's message, or 404 (another user's is as missing as a made-up id)."""
    try:
        return history.message_get(current_user, message_id)
    except NotFound:
        abort(404)


@bp.get("/messages/<message_id>")
@login_required
def message_detail(message_id: str):
    """One message in full: its content of any kind, delivery times and ids; expands in the log."""
    return render("dashboard/message.html", "dashboard/partials/_message_detail.html", message=own_message(message_id))


@bp.get("/messages/<message_id>/media")
@login_required
def message_media(message_id: str):
    """The photo, video, audio or document a message carries, for its owner's browser."""
    try:
        stored = history.message_media(own_message(message_id))
    except NotFound:
        abort(404)
    return media_response(stored)


@bp.post("/messages/<message_id>/retry")
@login_required
def message_retry(message_id: str):
    """Queue a failed message again; its row re-renders with the new status, or why it cannot."""
    error = None
    try:
        message = lifecycle.message_retry(current_user, message_id)
    except NotFound:
        abort(404)
    except ApiError as exc:
        message, error = history.message_get(current_user, message_id), exc.message
    if is_htmx():
        # 200 even when refused, so htmx swaps the row with its inline error in place.
        return render_template("dashboard/partials/_message_row.html", message=message, retry_error=error)
    flash(error or f"Message to +{message.phone} queued again.", "error" if error else "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith(url_for("dashboard.messages")) else url_for("dashboard.messages"))
