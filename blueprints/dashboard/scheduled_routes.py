"""Scheduled messages: the ones waiting for their time, to move to another time or call off."""

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.forms import RescheduleForm, local_send_at, send_at_error
from blueprints.dashboard.message_routes import own_message
from blueprints.dashboard.render import is_htmx, render
from models import Message
from services.errors import ApiError, NotFound
from services.governor.pace import session_pace
from services.messaging import scheduling
from services.sessions.lifecycle import session_list


@bp.get("/scheduled")
@login_required
def scheduled():
    """Every scheduled message, soonest first (one session's with ?session=)."""
    return _page()


def _page(*, error: tuple[str, str] | None = None, notice: str | None = None, moved: str | None = None):
    """The page (or, for htmx, its list): `error` (message id, text) beside its row (above
    the list once the message has left it), `notice` above, the `moved` row marked."""
    session_id = request.values.get("session", "").strip() or None
    try:
        messages = scheduling.scheduled_list(current_user, session_id=session_id, limit=500)
    except NotFound:
        abort(404)
    listed = {message.id for message in messages}
    beside = error if error and error[0] in listed else None
    return render(
        "dashboard/scheduled.html",
        "dashboard/partials/_scheduled_list.html",
        messages=messages,
        sessions={session.id: session for session in session_list(current_user)},
        session_id=session_id,
        errors=dict([beside]) if beside else {},
        error=error[1] if error and not beside else None,
        notice=notice,
        moved=moved,
    )


@bp.post("/scheduled/<message_id>/move")
@login_required
def scheduled_move(message_id: str):
    """Send a scheduled message at another time (the time as the browser's, or the session's, zone)."""
    message = own_message(message_id)
    form = RescheduleForm()
    error = None
    if not form.validate_on_submit() or form.send_at.data is None:
        error = (form.send_at.errors or ["Pick a new date and time"])[0]
    else:
        send_at = local_send_at(form.send_at.data, form.timezone.data, session_pace(message.session).timezone)
        try:
            scheduling.scheduled_move(current_user, message.id, send_at)
        except ApiError as exc:
            error = send_at_error(exc) if exc.code == "INVALID_SEND_AT" else exc.message
    return _answer(message, error, moved=error is None, done="Rescheduled the message to +{phone}.")


@bp.post("/scheduled/<message_id>/cancel")
@login_required
def scheduled_cancel(message_id: str):
    """Call a scheduled message off: it is never sent, and its quota slot comes back."""
    message = own_message(message_id)
    error = None
    try:
        scheduling.scheduled_cancel(current_user, message.id)
    except ApiError as exc:
        error = exc.message
    return _answer(message, error, moved=False, done="Cancelled the message to +{phone}: it will not be sent.")


def _answer(message: Message, error: str | None, *, moved: bool, done: str):
    text = done.format(phone=message.phone)
    if is_htmx():
        # 200 even when refused, so htmx swaps the list with the error beside its row.
        if error:
            return _page(error=(message.id, error))
        return _page(notice=text, moved=message.id if moved else None)
    flash(error or text, "error" if error else "success")
    return redirect(url_for("dashboard.scheduled", session=request.values.get("session") or None))
