"""Bulk send: compose a batch, preview whom it reaches, send it, and watch it go out."""

import math

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from blueprints.dashboard import bp
from blueprints.dashboard.forms import BulkForm, BulkPreviewForm, local_send_at, send_at_error
from blueprints.dashboard.render import is_htmx, render
from blueprints.errors.handlers import HTTP_CODES, error_response
from models import BulkBatch, SessionStatus, WaSession
from services.errors import ApiError
from services.governor.pace import session_pace
from services.messaging.bulk import (
    batch_cancel,
    batch_get,
    batch_overview,
    batches_recent,
    bulk_create,
    bulk_estimate,
    contacts_from_csv,
    contacts_from_text,
    contacts_preview,
)
from services.messaging.scheduling import send_at_parse
from services.sessions.lifecycle import session_get, session_list

# Long lists are cut short on screen; the whole report stays available from the API.
PREVIEW_SHOWN = 200
RESULTS_SHOWN = 500


def _session_label(session: WaSession) -> str:
    if session.status == SessionStatus.CONNECTED:
        return f"{session.name} · connected, +{session.phone}"
    return f"{session.name} · {session.status}, not connected"


def _bulk_form(sessions: list[WaSession], **kwargs) -> BulkForm:
    """The compose form offering the user's sessions; a connected one is chosen to start with."""
    form = BulkForm(**kwargs)
    form.session_id.choices = [(session.id, _session_label(session)) for session in sessions]
    if not form.is_submitted() and form.session_id.data is None:
        connected = [session.id for session in sessions if session.status == SessionStatus.CONNECTED]
        form.session_id.data = connected[0] if connected else None
    return form


def _page(form: BulkForm, sessions: list[WaSession], partial: str, **extra):
    """The bulk page (or `partial` of it, for htmx) with the compose form, any preview, and past batches."""
    batches = batches_recent(current_user)
    context = {
        "form": form,
        "sessions": sessions,
        "can_bulk": current_user.plan.has_feature("bulk_messaging"),
        "min_delay_ms": current_app.config["BULK_MIN_DELAY_MS"],
        "batches": batches,
        "any_running": any(item["batch"].status == "running" for item in batches),
        "preview": None,
        "preview_error": None,
        "preview_shown": PREVIEW_SHOWN,
        **extra,
    }
    return render("dashboard/bulk.html", partial, **context)


@bp.get("/bulk")
@login_required
def bulk():
    """Compose a bulk send; past batches below (the list alone for htmx, while any batch runs)."""
    sessions = session_list(current_user)
    return _page(_bulk_form(sessions), sessions, "dashboard/partials/_bulk_batches.html")


def _submitted_contacts(form: BulkForm) -> list[str] | None:
    """The contacts from the chosen CSV file, else from the box; None (with the error set) when unusable."""
    upload = form.file.data
    if upload:
        try:
            contacts = contacts_from_csv(upload.read(), upload.filename)
        except ApiError as exc:
            form.file.errors.append(exc.message)
            return None
        if not contacts:
            form.file.errors.append(f"{upload.filename} holds no phone numbers")
            return None
        # The box now shows what the file held, so previewing again needs no second upload.
        form.numbers.data = "\n".join(contacts)
        return contacts
    contacts = contacts_from_text(form.numbers.data or "")
    if not contacts:
        form.numbers.errors.append("Paste some phone numbers, or choose a CSV file")
        return None
    return contacts


@bp.post("/bulk/preview")
@login_required
def bulk_preview():
    """Whom the batch would reach: valid, invalid and repeated numbers, before anything is sent."""
    sessions = session_list(current_user)
    form = _bulk_form(sessions)
    extra = {}
    if current_user.plan.has_feature("bulk_messaging") and form.validate_on_submit():
        contacts = _submitted_contacts(form)
        chosen = session_get(current_user, form.session_id.data)
        starts = _start_time(form, chosen)
        if contacts is not None and starts is not None:
            try:
                preview = contacts_preview(contacts)
            except ApiError as exc:
                form.numbers.errors.append(exc.message)
            else:
                estimate = bulk_estimate(chosen, len(preview["valid"]), form.delay.data)
                confirm = BulkPreviewForm(
                    formdata=None,
                    session_id=form.session_id.data,
                    contacts="\n".join(item["phone"] for item in preview["valid"]),
                    message=form.message.data,
                    delay=form.delay.data,
                    send_at=starts,
                )
                extra = {
                    "preview": preview,
                    "estimate": estimate,
                    "confirm": confirm,
                    "chosen": chosen,
                    "starts_at": send_at_parse(starts or None),
                }
    return _page(form, sessions, "dashboard/partials/_bulk_compose.html", **extra)


def _start_time(form: BulkForm, session: WaSession) -> str | None:
    """The batch's start time as a `sendAt` ("" to start now); None, with the error set, when refused."""
    starts = local_send_at(form.start_at.data, form.timezone.data, session_pace(session).timezone)
    try:
        return starts if send_at_parse(starts) else ""
    except ApiError as exc:
        form.start_at.errors.append(send_at_error(exc))
        return None


@bp.post("/bulk")
@login_required
def bulk_send():
    """Send the previewed batch, then show its progress."""
    confirm = BulkPreviewForm()
    if confirm.validate_on_submit():
        try:
            batch = bulk_create(
                current_user,
                session_get(current_user, confirm.session_id.data),
                contacts=confirm.contacts.data.split(),
                text=confirm.message.data,
                delay=confirm.delay.data,
                send_at=confirm.send_at.data or None,
            )
        except ApiError as exc:
            error = send_at_error(exc) if exc.code == "INVALID_SEND_AT" else exc.message
        else:
            # A batch that starts now needs no word of it: its page shows how far it has got,
            # and a small one is done before the page is drawn.
            if batch.status == "scheduled":
                flash(f"Scheduled a batch to {batch.total} numbers.", "success")
            target = url_for("dashboard.bulk_batch", batch_id=batch.id)
            if is_htmx():
                return "", 200, {"HX-Redirect": target}
            return redirect(target)
    else:
        error = "Nothing was sent: preview the batch again, then send it."
    sessions = session_list(current_user)
    form = _bulk_form(
        sessions,
        formdata=None,
        session_id=confirm.session_id.data,
        numbers=confirm.contacts.data,
        message=confirm.message.data,
        delay=confirm.delay.data,
    )
    return _page(form, sessions, "dashboard/partials/_bulk_compose.html", preview_error=error)


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(exc: RequestEntityTooLarge):
    """A CSV over the upload limit: say so beside the compose form rather than on an error page."""
    if request.endpoint != "dashboard.bulk_preview":
        error, code = HTTP_CODES[413]
        return error_response(413, error, exc.description, code)
    limit = current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
    message = f"The file is too large: uploads are limited to {limit:g} MB. Split the list into smaller files."
    if is_htmx():
        # The body was never read, so keep the form as the user left it and replace only the preview.
        html = render_template("dashboard/partials/_bulk_preview.html", preview=None, preview_error=message)
        return html, 200, {"HX-Retarget": "#bulk-preview", "HX-Reswap": "outerHTML"}
    sessions = session_list(current_user)
    form = _bulk_form(sessions, formdata=None)
    return _page(form, sessions, "dashboard/partials/_bulk_compose.html", preview_error=message), 413


def _own_batch(batch_id: str) -> BulkBatch:
    try:
        return batch_get(current_user, batch_id)
    except ApiError:
        abort(404)


def _batch_context(batch: BulkBatch) -> dict:
    return {
        "batch": batch,
        "session": session_get(current_user, batch.session_id),
        "overview": batch_overview(batch),
        "results_shown": RESULTS_SHOWN,
    }


@bp.get("/bulk/<batch_id>")
@login_required
def bulk_batch(batch_id: str):
    """One batch: live progress, counts and a result per recipient."""
    return render_template("dashboard/bulk_batch.html", **_batch_context(_own_batch(batch_id)))


@bp.get("/bulk/<batch_id>/progress")
@login_required
def bulk_progress(batch_id: str):
    """The progress panel, re-fetched on each of the batch's events and every 2 s while it runs."""
    batch = _own_batch(batch_id)
    html = render_template("dashboard/partials/_bulk_progress.html", **_batch_context(batch))
    # 286 tells htmx to stop polling: a finished (or cancelled) batch changes no more.
    return html, 286 if batch.status in ("finished", "cancelled") else 200


@bp.post("/bulk/<batch_id>/cancel")
@login_required
def bulk_cancel(batch_id: str):
    """Call off a scheduled batch before it starts: none of it is sent, its quota comes back."""
    batch = _own_batch(batch_id)
    try:
        batch_cancel(current_user, batch.id)
    except ApiError as exc:
        flash(exc.message, "error")
    else:
        flash("Batch cancelled: none of its messages will be sent, and they are back in your quota.", "success")
    return redirect(url_for("dashboard.bulk_batch", batch_id=batch.id))


@bp.app_template_filter("approx_duration")
def approx_duration(seconds: float) -> str:
    """0.5 -> 'a moment'; 12.4 -> 'about 13 seconds'; 500 -> 'about 8 minutes'; 7300 -> 'about 2 h 2 min'."""
    if seconds < 1:
        return "a moment"
    if seconds < 90:
        whole = math.ceil(seconds)
        return f"about {whole} second{'' if whole == 1 else 's'}"
    if seconds < 3600:
        return f"about {round(seconds / 60)} minutes"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes} min"
