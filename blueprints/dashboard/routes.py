from datetime import UTC, datetime

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.forms import (
    PaceForm,
    PairCodeForm,
    SendForm,
    SessionForm,
    field_error,
    local_send_at,
    send_at_error,
)
from blueprints.dashboard.render import is_htmx, render
from models import Message, MessageStatus, WaSession
from models.base import as_utc, isoformat
from services.accounts.quotas import quota_get
from services.errors import ApiError
from services.governor.pace import pace_view, session_pace
from services.messaging.history import messages_recent
from services.messaging.sending import message_send, message_wait
from services.sessions import lifecycle as svc
from services.sessions.pairing import simulated_scan


@bp.get("/")
def index():
    """Landing page; the sessions page for someone logged in."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.sessions"))
    return render_template("dashboard/index.html")


@bp.get("/favicon.ico")
def favicon():
    """The site's icon where browsers look for it unasked (pages name static/favicon.svg too)."""
    return current_app.send_static_file("favicon.ico")


@bp.route("/sessions", methods=["GET", "POST"])
@login_required
def sessions():
    """All sessions with live status; the create form."""
    form = SessionForm()
    if form.validate_on_submit():
        try:
            session = svc.session_create(current_user, name=form.name.data, description=form.description.data or "")
        except ApiError as exc:
            flash(exc.message, "error")
        else:
            return redirect(url_for("dashboard.session_detail", session_id=session.id))
    return render(
        "dashboard/sessions.html",
        "dashboard/partials/_session_list.html",
        form=form,
        sessions=svc.session_list(current_user),
        simulator=current_app.config["WA_ENGINE"] == "simulator",
        quota=quota_get(current_user),
    )


def own_session(session_id: str) -> WaSession:
    """The current user's session; 404 for anybody else's, as for a missing one."""
    try:
        return svc.session_get(current_user, session_id)
    except ApiError:
        abort(404)


def session_page(session: WaSession, partial: str | None = None, **forms):
    """The session page (or `partial` of it, for htmx), with `forms` in place of fresh ones."""
    pace = pace_view(session)
    return render(
        "dashboard/session.html",
        partial,
        session=session,
        form=forms.get("form") or SendForm(formdata=None),
        pair_form=PairCodeForm(formdata=None),
        pace=pace,
        pace_form=forms.get("pace_form") or PaceForm.showing(pace["pace"]),
        send_zone=pace["pace"]["timezone"],
        messages=messages_recent(current_user, session.id),
        simulator=current_app.config["WA_ENGINE"] == "simulator",
        sent=forms.get("sent"),
    )


@bp.get("/sessions/<session_id>")
@login_required
def session_detail(session_id: str):
    """One session: pairing or status, counters, its sending pace, a test send, recent messages."""
    return session_page(own_session(session_id))


@bp.get("/sessions/<session_id>/panel")
@login_required
def session_panel(session_id: str):
    """The status/QR panel, re-fetched whenever the session changes."""
    return render_template(
        "dashboard/partials/_session_panel.html",
        session=own_session(session_id),
        pair_form=PairCodeForm(formdata=None),
        simulator=current_app.config["WA_ENGINE"] == "simulator",
    )


@bp.post("/sessions/<session_id>/<action>")
@login_required
def session_action(session_id: str, action: str):
    """Connect, disconnect, log out or delete a session."""
    own_session(session_id)
    actions = {
        "connect": svc.session_connect,
        "disconnect": svc.session_disconnect,
        "logout": svc.session_logout,
        "delete": svc.session_delete,
    }
    if action not in actions:
        abort(404)
    actions[action](current_user, session_id)
    if action == "delete":
        flash("Session deleted.", "success")
        if is_htmx():
            return "", 200, {"HX-Redirect": url_for("dashboard.sessions")}
        return redirect(url_for("dashboard.sessions"))
    if is_htmx():
        return session_panel(session_id)
    return redirect(url_for("dashboard.session_detail", session_id=session_id))


@bp.post("/sessions/<session_id>/simulate-scan")
@login_required
def session_simulate_scan(session_id: str):
    """Simulator only: pair the session as if a phone scanned its current QR."""
    session = own_session(session_id)
    if current_app.config["WA_ENGINE"] != "simulator":
        abort(404)
    try:
        simulated_scan(session)
    except ApiError as exc:
        flash(exc.message, "error")
    return (
        session_panel(session_id) if is_htmx() else redirect(url_for("dashboard.session_detail", session_id=session_id))
    )


@bp.post("/sessions/<session_id>/pair-code")
@login_required
def session_pair_code(session_id: str):
    """Link with a phone number instead of the QR: the code to enter on the phone, in place of the form."""
    session = own_session(session_id)
    form = PairCodeForm()
    code = None
    if form.validate_on_submit():
        try:
            code = svc.session_pair_code(current_user, session.id, form.phone.data)
        except ApiError as exc:
            form.phone.errors = [*form.phone.errors, exc.message]
    # Errors come back as 200 so htmx swaps the form with its inline messages in place.
    return render_template(
        "dashboard/partials/_pair_code.html",
        session=session,
        pair_form=form,
        code=code,
        simulator=current_app.config["WA_ENGINE"] == "simulator",
    )


@bp.post("/sessions/<session_id>/simulate-pair-code")
@login_required
def session_simulate_pair_code(session_id: str):
    """Simulator only: the phone enters the pairing code the session gave."""
    session = own_session(session_id)
    if current_app.config["WA_ENGINE"] != "simulator":
        abort(404)
    try:
        svc.session_pair_code_simulated(session.id, request.form.get("code"))
    except ApiError as exc:
        flash(exc.message, "error")
    return (
        session_panel(session_id) if is_htmx() else redirect(url_for("dashboard.session_detail", session_id=session_id))
    )


@bp.post("/sessions/<session_id>/send")
@login_required
def session_send(session_id: str):
    """Send a test message, now or at a time; the form re-renders in place with inline errors."""
    session = own_session(session_id)
    zone = session_pace(session).timezone
    form = SendForm()
    sent: Message | None = None
    if form.validate_on_submit():
        send_at = local_send_at(form.send_at.data, form.timezone.data, zone)
        try:
            message = message_send(
                current_user,
                session.id,
                to=form.to.data,
                text=form.message.data,
                idempotency_key=None,
                send_at=send_at,
            )
        except ApiError as exc:
            if exc.code == "INVALID_SEND_AT":
                form.send_at.errors = [*form.send_at.errors, send_at_error(exc)]
            else:
                if exc.code == "INVALID_NUMBER":
                    field_error(form.to, exc, "to")
                else:
                    field_error(form.message, exc, "message")
        else:
            sent = message
            if message.status != MessageStatus.SCHEDULED:
                sent = message_wait(message, min(current_app.config["SEND_WAIT_SECONDS"], 2.0))
            form = SendForm(formdata=None)
    # Errors come back as 200 so htmx swaps the form with its inline messages in place.
    if not is_htmx():
        # Sent before the page's scripts ran: the whole page, with the form as htmx would show it.
        return session_page(session, form=form, sent=sent)
    headers = {"HX-Trigger": f"wa-messages-{session.id}"} if sent else {}
    html = render_template("dashboard/partials/_send_form.html", session=session, form=form, sent=sent, send_zone=zone)
    return html, 200, headers


@bp.get("/sessions/<session_id>/messages")
@login_required
def session_messages(session_id: str):
    """The session's recent messages, re-fetched on every status change."""
    session = own_session(session_id)
    return render_template(
        "dashboard/partials/_recent_messages.html", session=session, messages=messages_recent(current_user, session.id)
    )


@bp.app_template_filter("ticks")
def ticks(status: str) -> str:
    """WhatsApp's ticks for a message status."""
    return {"queued": "🕓", "sent": "✓", "delivered": "✓✓", "read": "✓✓", "played": "✓✓", "failed": "!"}.get(status, "")


@bp.app_template_filter("utc_iso")
def utc_iso(value: datetime | str) -> str:
    """A time for <time datetime>, always with its zone (SQLite hands back naive UTC)."""
    return value if isinstance(value, str) else isoformat(value)


@bp.app_template_filter("utc_text")
def utc_text(value: datetime | str, seconds: bool = False) -> str:
    """A time as the page shows it before static/js/app.js puts it in the browser's zone."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else as_utc(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) + " UTC"


@bp.app_template_filter("utc_input")
def utc_input(value: datetime) -> str:
    """A time as a datetime-local input's value, in UTC (app.js changes it to the browser's zone)."""
    return as_utc(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@bp.app_context_processor
def dashboard_context() -> dict:
    return {"request_path": request.path}
