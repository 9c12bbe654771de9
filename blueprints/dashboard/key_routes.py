"""API keys in the browser: create one (its key shown once), see them all, revoke one."""

from datetime import UTC, datetime, time

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.forms import ApiKeyForm
from blueprints.dashboard.render import is_htmx, render
from blueprints.dashboard.routes import own_session
from services.accounts.api_keys import api_key_create, api_key_revoke, api_keys_list
from services.errors import ApiError
from services.sessions.lifecycle import session_list

# The service's field names, and the form fields that show their errors.
FORM_FIELDS = {"name": "name", "mode": "mode", "sessionIds": "sessions", "expiresAt": "expires"}
FORM_PARTIAL = "dashboard/partials/_key_form.html"


def _key_form(sessions, **kwargs) -> ApiKeyForm:
    form = ApiKeyForm(**kwargs)
    form.sessions.choices = [(session.id, session.name) for session in sessions]
    return form


def _page(form: ApiKeyForm, sessions, partial: str, *, created=None, plaintext: str | None = None):
    """The keys page, or for htmx just `partial` of it (the list, or the form with a new key)."""
    return render(
        "dashboard/keys.html",
        partial,
        form=form,
        keys=api_keys_list(current_user),
        session_names={session.id: session.name for session in sessions},
        created=created,
        plaintext=plaintext,
    )


@bp.get("/keys")
@login_required
def keys():
    """Every API key with its prefix, mode, sessions and use; the create form."""
    sessions = session_list(current_user)
    return _page(_key_form(sessions), sessions, "dashboard/partials/_key_list.html")


@bp.post("/keys")
@login_required
def key_create():
    """Create a key; the answer is the only place its plaintext ever appears."""
    sessions = session_list(current_user)
    form = _key_form(sessions)
    if form.validate_on_submit():
        expires = form.expires.data
        try:
            key, plaintext = api_key_create(
                current_user,
                name=form.name.data,
                mode=form.mode.data,
                session_ids=form.sessions.data or None,
                # The key stops working when the chosen day begins (UTC).
                expires_at=datetime.combine(expires, time.min, tzinfo=UTC).isoformat() if expires else None,
            )
        except ApiError as exc:
            field = getattr(form, FORM_FIELDS.get(exc.details.get("field"), "name"))
            field.errors = [*field.errors, exc.message]
        else:
            # Never flash or redirect here: the key would land in the session cookie or be lost.
            form = _key_form(sessions, formdata=None)
            response = _page(form, sessions, FORM_PARTIAL, created=key, plaintext=plaintext)
            response.headers["HX-Trigger"] = "wa-keys"
            return response
    return _page(form, sessions, FORM_PARTIAL)


@bp.post("/keys/<key_id>/revoke")
@login_required
def key_revoke(key_id: str):
    """Revoke a key: scripts using it get 401 from now on."""
    try:
        key = api_key_revoke(current_user, key_id)
    except ApiError:
        abort(404)
    if is_htmx():
        return keys()
    flash(f"API key “{key.name}” revoked.", "success")
    return redirect(url_for("dashboard.keys"))


@bp.post("/sessions/<session_id>/session-key")
@login_required
def session_key_create(session_id: str):
    """A live key bound to this one session (the self-hosted gateway API's "session key"), shown once."""
    session = own_session(session_id)
    key, plaintext = api_key_create(current_user, name=f"Session key: {session.name}"[:100], session_ids=[session.id])
    return render_template("dashboard/partials/_key_created.html", created=key, plaintext=plaintext)
