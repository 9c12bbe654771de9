"""Forgotten passwords: single-use, expiring reset links, sent by email when SMTP is set up."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from extensions import db
from models import User
from services.accounts.users import password_check, password_hasher
from services.errors import ValidationError

log = logging.getLogger(__name__)
SALT = "wagate-password-reset"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def reset_link(user: User) -> str:
    """A link that works once: it names the current password hash, which the reset replaces."""
    token = _serializer().dumps({"u": user.id, "p": user.password_hash[-12:]})
    return current_app.config["PUBLIC_URL"] + url_for("dashboard.reset_password_page", token=token)


def reset_request(email: str) -> None:
    """Email a reset link if the account exists (the caller says the same either way)."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        return
    link = reset_link(user)
    if not current_app.config["SMTP_HOST"]:
        log.warning("password reset asked for %s, but SMTP is not configured (SMTP_HOST)", user.email)
        return
    message = EmailMessage()
    message["Subject"] = "Reset your wagate password"
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = user.email
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    message.set_content(
        f"Hello {user.username},\n\nSomebody (hopefully you) asked to reset your wagate password.\n"
        f"Open this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
        "If it was not you, ignore this email: your password stays as it is.\n"
    )
    config = current_app.config
    try:
        with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT_SECONDS"]) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USERNAME"]:
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        # The caller answers as it does for an unknown address: a failure here must not
        # tell anyone that this account exists.
        log.error("password reset email to %s failed: %s", user.email, exc)


def reset_user(token: str) -> User:
    """The user a reset link is for; a clear error if it expired or was used already."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
    except SignatureExpired as exc:
        raise ValidationError("This reset link has expired; ask for a new one", code="RESET_EXPIRED") from exc
    except BadSignature as exc:
        raise ValidationError("This reset link is not valid", code="RESET_INVALID") from exc
    user = db.session.get(User, data.get("u"))
    if user is None or user.password_hash[-12:] != data.get("p"):
        raise ValidationError("This reset link was used already; ask for a new one", code="RESET_USED")
    return user


def reset_password(token: str, new_password: str) -> User:
    user = reset_user(token)
    user.password_hash = password_hasher.hash(password_check(new_password))
    db.session.commit()
    return user
