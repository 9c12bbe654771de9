"""A session's sending pace (the send governor): its queue, its settings, and resuming a
session the governor paused, which every page announces."""

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.contract.native import native
from blueprints.dashboard import bp
from blueprints.dashboard.forms import PaceForm, plain_number
from blueprints.dashboard.render import is_htmx
from blueprints.dashboard.routes import own_session, session_page
from blueprints.schemas.sessions import PaceChange
from services.errors import ApiError, Conflict
from services.governor import pace as pacing


@bp.get("/sessions/<session_id>/pace")
@login_required
def session_pace(session_id: str):
    """The pace card's live part: queue, next send and why it waits, today's use."""
    session = own_session(session_id)
    return render_template("dashboard/partials/_pace_status.html", session=session, pace=pacing.pace_view(session))


@bp.post("/sessions/<session_id>/pace")
@login_required
def session_pace_save(session_id: str):
    """Save the pace settings; the form comes back with inline errors, or saved."""
    session = own_session(session_id)
    form = PaceForm()
    saved = False
    if form.validate_on_submit():
        try:
            # Checked as the API checks a PUT .../pace, by the same schema.
            view = pacing.pace_set(current_user, session.id, native.validate(PaceChange, form.settings()))
        except ApiError as exc:
            form.refused(exc)
        else:
            form, saved = PaceForm.showing(view["pace"]), True
    return _pace_form(session, form, saved=saved)


@bp.post("/sessions/<session_id>/pace/defaults")
@login_required
def session_pace_defaults(session_id: str):
    """Put every pace setting back to this server's defaults."""
    session = own_session(session_id)
    view = pacing.pace_reset(current_user, session.id)
    return _pace_form(session, PaceForm.showing(view["pace"]), saved=True)


def _pace_form(session, form: PaceForm, *, saved: bool):
    if not is_htmx():
        if saved:
            flash("Sending pace saved.", "success")
            return redirect(url_for("dashboard.session_detail", session_id=session.id))
        return session_page(session, pace_form=form)
    # Errors come back as 200 so htmx swaps the form with its inline messages in place; a
    # saved pace also refreshes the card's queue part, whose waits depend on it.
    headers = {"HX-Trigger": f"wa-pace-{session.id}"} if saved else {}
    html = render_template("dashboard/partials/_pace_form.html", session=session, pace_form=form, saved=saved)
    return html, 200, headers


@bp.post("/sessions/<session_id>/resume")
@login_required
def session_resume(session_id: str):
    """Resume a paused session's sending; every banner and pace card showing it refreshes."""
    session = own_session(session_id)
    try:
        pacing.session_resume(current_user, session.id)
    except Conflict:  # resumed meanwhile (another tab, the API): the refresh shows it
        pass
    if is_htmx():
        return "", 200, {"HX-Trigger": "wa-paused"}
    flash(f"Sending from {session.name} resumed.", "success")
    return redirect(url_for("dashboard.session_detail", session_id=session.id))


@bp.get("/paused")
@login_required
def paused_alerts():
    """The banners of paused sessions, re-fetched when one is paused or resumed."""
    return render_template("dashboard/partials/_paused_alerts.html")


bp.add_app_template_filter(plain_number, "plain_number")


@bp.app_context_processor
def pacing_context() -> dict:
    """`paused_sessions()` for base.html: sessions whose sending is paused, which the owner must hear of."""

    def paused_sessions() -> list:
        return pacing.sessions_paused(current_user) if current_user.is_authenticated else []

    return {"paused_sessions": paused_sessions}
