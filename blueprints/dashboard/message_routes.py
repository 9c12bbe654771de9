from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.render import is_htmx, render
from models import MessageStatus
from services import messages as svc
from services.errors import ApiError, NotFound
from services.sessions import session_list

# The log's query parameters; the filters are the ones the form on the page sets.
FILTERS = ("q", "session", "status", "direction", "from", "to")
CURSORS = ("before", "after")


@bp.get("/messages")
@login_required
def messages():
    """The message log: filtered, searched and paged, newest first; the Failed view is status=failed."""
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    # Carried through every link and refresh, but dropped from the URL when unset.
    query = {name: value for name, value in filters.items() if value}
    if request.args.get("limit"):
        query["limit"] = request.args["limit"]
    cursor = {name: request.args[name] for name in CURSORS if request.args.get(name)}
    error = None
    try:
        log = svc.messages_search(
            current_user,
            session_id=filters["session"],
            status=filters["status"],
            direction=filters["direction"],
            date_from=filters["from"],
            date_to=filters["to"],
            text=filters["q"],
            limit=query.get("limit"),
            **cursor,
        )
    except ApiError as exc:
        log, error = svc.MessagePage([]), exc.message
    return render(
        "dashboard/messages.html",
        "dashboard/partials/_message_table.html",
        log=log,
        error=error,
        filters=filters,
        query=query,
        log_url=url_for("dashboard.messages", **query, **cursor),
        failed_count=svc.messages_failed_count(current_user),
        sessions=session_list(current_user),
        statuses=list(MessageStatus),
    )


@bp.post("/messages/<message_id>/retry")
@login_required
def message_retry(message_id: str):
    """Queue a failed message again; its row re-renders with the new status, or why it cannot."""
    error = None
    try:
        message = svc.message_retry(current_user, message_id)
    except NotFound:
        abort(404)
    except ApiError as exc:
        message, error = svc.message_get(current_user, message_id), exc.message
    if is_htmx():
        # 200 even when refused, so htmx swaps the row with its inline error in place.
        return render_template("dashboard/partials/_message_row.html", message=message, retry_error=error)
    flash(error or f"Message to +{message.phone} queued again.", "error" if error else "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith(url_for("dashboard.messages")) else url_for("dashboard.messages"))
