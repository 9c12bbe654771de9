from flask import current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from blueprints.common import login_rate_limit, login_succeeded, register_rate_limit
from blueprints.dashboard import bp
from blueprints.dashboard.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    RegisterForm,
    ResetPasswordForm,
)
from blueprints.dashboard.render import render
from extensions import db, limiter
from models import WaSession
from services.accounts.passwords import reset_password, reset_request, reset_user
from services.accounts.quotas import plan_quota_describe, quota_get
from services.accounts.users import token_issue, user_authenticate, user_change_password, user_register
from services.errors import ApiError
from services.messaging.stats import stats_get
from services.sessions.lifecycle import session_list


def _safe_next(target: str | None) -> str:
    """Only redirect to paths on this site after login."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("dashboard.sessions")


def _log_in(user) -> None:
    """Start a fresh cookie session for `user`: nothing from before the login is carried over
    (no session fixation), and the CSRF token changes with it."""
    session.clear()
    login_user(user)


@bp.route("/login", methods=["GET", "POST"])
@login_rate_limit
def login():
    """Log in with the same account as the API."""
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = user_authenticate(email=form.email.data, password=form.password.data)
        except ApiError as exc:
            form.password.errors.append(exc.message)
        else:
            login_succeeded()
            _log_in(user)
            return redirect(_safe_next(request.args.get("next")))
    return render("dashboard/login.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
@register_rate_limit
def register():
    """Create an account."""
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = user_register(email=form.email.data, password=form.password.data, username=form.username.data)
        except ApiError as exc:
            form.email.errors.append(exc.message)
        else:
            _log_in(user)
            flash(_welcome(user), "success")
            return redirect(url_for("dashboard.sessions"))
    return render("dashboard/register.html", form=form)


def _welcome(user) -> str:
    """What a new account can do, said as it starts: the first account of a self-hosted
    server is its admin with every feature, and the next ones are not."""
    plan = user.plan
    start = "Create your first WhatsApp session to get started."
    if user.is_admin:
        admin = f"As this server's first account you are its admin, on the {plan.name} plan with every feature."
        return f"Welcome! {admin} {start}"
    sessions = f"{plan.max_sessions} session{'' if plan.max_sessions == 1 else 's'}"
    missing = [
        name
        for feature, name in (("bulk_messaging", "bulk send"), ("webhooks", "webhooks"))
        if not plan.has_feature(feature)
    ]
    without = f", without {' or '.join(missing)}" if missing else ""
    return (
        f"Welcome! Your account is on the {plan.name} plan ({sessions}{without}); the server's operator can "
        f"move it to another with: flask --app app users set-plan {user.email} PLAN. {start}"
    )


@bp.post("/logout")
def logout():
    """Log out of the dashboard (and drop everything else the cookie session held)."""
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("dashboard.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Plan, usage against it, API help, and the password form."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user_change_password(current_user, current=form.current.data, new=form.new.data)
        except ApiError as exc:
            form.current.errors.append(exc.message)
        else:
            login_user(current_user)  # the cookie names the password: renew it for this browser
            flash("Password changed. Other browsers have been logged out.", "success")
            return redirect(url_for("dashboard.account"))
    sessions = session_list(current_user)
    return render(
        "dashboard/account.html",
        form=form,
        sessions=sessions,
        session_count=db.session.scalar(
            select(func.count()).select_from(WaSession).where(WaSession.user_id == current_user.id)
        ),
        totals=stats_get(current_user)["totals"],
        quota=quota_get(current_user),
        quota_text=plan_quota_describe(current_user.plan),
        public_url=current_app.config["PUBLIC_URL"],
    )


@bp.post("/account/token")
@login_required
def account_token():
    """Issue an API token for this account (shown once, in the page)."""
    return render("dashboard/account.html", "dashboard/partials/_token.html", token=token_issue(current_user))


def _reset_email_key() -> str:
    return "reset:" + (request.form.get("email") or "").strip().lower()


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit("3 per hour", key_func=_reset_email_key, scope="forgot-password", methods=["POST"])
def forgot_password():
    """Ask for a reset link by email."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        reset_request(form.email.data)
        flash("If that address has an account, a reset link is on its way. It works once, for an hour.")
        return redirect(url_for("dashboard.login"))
    return render("dashboard/forgot_password.html", form=form, smtp=bool(current_app.config["SMTP_HOST"]))


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password_page(token: str):
    """Choose a new password from a reset link."""
    form = ResetPasswordForm()
    try:
        reset_user(token)
    except ApiError as exc:
        flash(exc.message, "error")
        return redirect(url_for("dashboard.forgot_password"))
    if form.validate_on_submit():
        reset_password(token, form.new.data)
        flash("Your password is changed. Log in with the new one.", "success")
        return redirect(url_for("dashboard.login"))
    return render("dashboard/reset_password.html", form=form)
