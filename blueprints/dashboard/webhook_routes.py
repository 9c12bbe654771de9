"""Webhooks in the browser: add an endpoint (its secret shown once), watch its delivery log,
send a test event, redeliver, rotate the secret, pause, enable or delete it."""

from flask import abort, flash, redirect, url_for
from flask_login import current_user, login_required

from blueprints.dashboard import bp
from blueprints.dashboard.forms import WebhookForm
from blueprints.dashboard.render import is_htmx, render
from services.errors import ApiError
from services.sessions.lifecycle import session_list
from services.webhooks import endpoints as svc

# The service's field names, and the form fields that show their errors.
FORM_FIELDS = {"url": "url", "events": "events", "sessionId": "session_id", "format": "format"}
FORM_PARTIAL = "dashboard/partials/_webhook_form.html"
LIST_PARTIAL = "dashboard/partials/_webhook_list.html"
DELIVERIES_PARTIAL = "dashboard/partials/_webhook_deliveries.html"
# Deliveries shown per endpoint (the API pages through more).
LOG_LENGTH = 10


def _webhook_form(sessions, **kwargs) -> WebhookForm:
    form = WebhookForm(**kwargs)
    form.session_id.choices = [("", "Every session"), *((session.id, session.name) for session in sessions)]
    return form


def _own_webhook(webhook_id: str):
    try:
        return svc.webhook_get(current_user, webhook_id)
    except ApiError:
        abort(404)


def _endpoints() -> list[dict]:
    return [
        {"webhook": webhook, "deliveries": svc.webhook_deliveries(webhook, limit=LOG_LENGTH)}
        for webhook in svc.webhooks_list(current_user)
    ]


def _page(form: WebhookForm, sessions, partial: str, **context):
    """The webhooks page, or for htmx just `partial` of it (the list, or the form with a new secret)."""
    return render(
        "dashboard/webhooks.html",
        partial,
        form=form,
        endpoints=_endpoints(),
        session_names={session.id: session.name for session in sessions},
        allowed=current_user.plan.has_feature("webhooks"),
        **context,
    )


def _list():
    """The endpoint list, as htmx gets it after an action on one endpoint."""
    sessions = session_list(current_user)
    return _page(_webhook_form(sessions), sessions, LIST_PARTIAL)


def _deliveries(webhook):
    return render(DELIVERIES_PARTIAL, endpoint={"webhook": webhook, "deliveries": svc.webhook_deliveries(webhook)})


@bp.get("/webhooks")
@login_required
def webhooks():
    """Every endpoint with its status and delivery log; the form to add one."""
    sessions = session_list(current_user)
    return _page(_webhook_form(sessions), sessions, LIST_PARTIAL)


@bp.post("/webhooks")
@login_required
def webhook_create():
    """Add an endpoint; the answer is the only place its secret appears."""
    sessions = session_list(current_user)
    form = _webhook_form(sessions)
    if form.validate_on_submit():
        try:
            webhook, secret = svc.webhook_create(
                current_user,
                url=form.url.data,
                events=form.events.data,
                session_id=form.session_id.data or None,
                format_=form.format.data,
            )
        except ApiError as exc:
            field = getattr(form, FORM_FIELDS.get(exc.details.get("field"), "url"))
            field.errors = [*field.errors, exc.message]
        else:
            # Never flash or redirect here: the secret would land in the session cookie or be lost.
            form = _webhook_form(sessions, formdata=None)
            response = _page(form, sessions, FORM_PARTIAL, created=webhook, secret=secret)
            response.headers["HX-Trigger"] = "wa-webhooks"
            return response
    return _page(form, sessions, FORM_PARTIAL)


@bp.post("/webhooks/<webhook_id>/enable")
@login_required
def webhook_enable(webhook_id: str):
    """Enable an endpoint again (its failure count starts over)."""
    svc.webhook_update(_own_webhook(webhook_id), changes={"enabled": True})
    return _list() if is_htmx() else redirect(url_for("dashboard.webhooks"))


@bp.post("/webhooks/<webhook_id>/disable")
@login_required
def webhook_disable(webhook_id: str):
    """Pause an endpoint: no deliveries until it is enabled again."""
    svc.webhook_update(_own_webhook(webhook_id), changes={"enabled": False})
    return _list() if is_htmx() else redirect(url_for("dashboard.webhooks"))


@bp.post("/webhooks/<webhook_id>/rotate-secret")
@login_required
def webhook_rotate_secret(webhook_id: str):
    """Replace the secret; the new one is shown in this answer only."""
    webhook, secret = svc.webhook_secret_rotate(_own_webhook(webhook_id))
    sessions = session_list(current_user)
    # Never flash or redirect here either: the whole page (or the list) is the only place it appears.
    return _page(_webhook_form(sessions), sessions, LIST_PARTIAL, rotated=webhook, secret=secret)


@bp.post("/webhooks/<webhook_id>/delete")
@login_required
def webhook_delete(webhook_id: str):
    """Delete an endpoint and its delivery log."""
    svc.webhook_delete(_own_webhook(webhook_id))
    if is_htmx():
        return _list()
    flash("Webhook endpoint deleted.", "success")
    return redirect(url_for("dashboard.webhooks"))


@bp.get("/webhooks/<webhook_id>/deliveries")
@login_required
def webhook_deliveries(webhook_id: str):
    """One endpoint's delivery log (re-fetched while a delivery is pending)."""
    return _deliveries(_own_webhook(webhook_id))


@bp.post("/webhooks/<webhook_id>/test")
@login_required
def webhook_test(webhook_id: str):
    """Send the endpoint a webhook.test event."""
    webhook = _own_webhook(webhook_id)
    try:
        svc.webhook_test(webhook)
    except ApiError as exc:
        flash(exc.message, "error")
    return _deliveries(webhook) if is_htmx() else redirect(url_for("dashboard.webhooks"))


@bp.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver")
@login_required
def webhook_redeliver(webhook_id: str, delivery_id: str):
    """Send a delivery again now (same delivery id and body, next attempt number)."""
    webhook = _own_webhook(webhook_id)
    try:
        svc.webhook_redeliver(webhook, delivery_id)
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
    return _deliveries(webhook) if is_htmx() else redirect(url_for("dashboard.webhooks"))


@bp.app_context_processor
def webhook_alerts_context() -> dict:
    """`webhook_alerts()` for base.html: endpoints wagate disabled, which the owner must hear of."""

    def webhook_alerts() -> list:
        return svc.webhooks_disabled(current_user) if current_user.is_authenticated else []

    return {"webhook_alerts": webhook_alerts}
