"""Accounts, password hashing and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Plan, User
from services.errors import Conflict, Unauthorized, ValidationError
from services.platform.green import off_loop


class _OffLoopHasher(PasswordHasher):
    """Hashes off the greenlets' thread in the web role: ~20 ms of argon2 per login would
    otherwise stop every live client of the process (services/platform/green.py)."""

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        return off_loop(super().hash, password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        return off_loop(super().verify, hash, password)


# OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
password_hasher = _OffLoopHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
TOP_PLAN = "enterprise"


def email_normalize(email: object) -> str:
    if not isinstance(email, str) or not email.strip():
        raise ValidationError("A valid email address is required", code="INVALID_EMAIL")
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError(f"Invalid email address: {exc}", code="INVALID_EMAIL") from exc


def password_check(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters", code="WEAK_PASSWORD")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters", code="INVALID_PASSWORD")
    return password


def _email_taken() -> Conflict:
    return Conflict("An account with this email already exists", error="Email already registered", code="EMAIL_TAKEN")


def user_register(*, email: str, password: str, username: str | None = None) -> User:
    """Create an account on the default plan (the first one is an admin when configured).

    The username is at most 64 characters (the API's schema and the dashboard's form say
    so); it defaults to the email's local part."""
    email = email_normalize(email)
    password = password_check(password)
    if not username:
        username = email.split("@", 1)[0]
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise _email_taken()

    first_admin = current_app.config["FIRST_USER_IS_ADMIN"] and not db.session.scalar(
        select(func.count()).select_from(User)
    )
    plan_id = TOP_PLAN if first_admin else current_app.config["DEFAULT_PLAN"]
    if db.session.get(Plan, plan_id) is None:
        raise RuntimeError(f"DEFAULT_PLAN {plan_id!r} is not a known plan")
    user = User(
        email=email,
        username=username.strip(),
        password_hash=password_hasher.hash(password),
        plan_id=plan_id,
        is_admin=first_admin,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:  # a concurrent registration of the same email won
        db.session.rollback()
        raise _email_taken() from exc
    return user


def user_authenticate(*, email: str, password: str) -> User:
    """The account with these credentials (both non-empty, as the API's schema and the
    dashboard's form require); 401 otherwise, in the same time whether or not it exists."""
    invalid = Unauthorized("Invalid email or password", error="Invalid credentials", code="INVALID_CREDENTIALS")
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        password_hasher.hash(password)  # same cost whether or not the account exists
        raise invalid
    try:
        password_hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise invalid from exc
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = password_hasher.hash(password)
        db.session.commit()
    return user


def user_set_plan(*, email: str, plan_id: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise ValidationError(f"No account with email {email}", code="USER_NOT_FOUND")
    if db.session.get(Plan, plan_id) is None:
        known = ", ".join(db.session.scalars(select(Plan.id).order_by(Plan.rank)))
        raise ValidationError(f"Unknown plan {plan_id!r}; known plans: {known}", code="UNKNOWN_PLAN")
    user.plan_id = plan_id
    db.session.commit()
    return user


def user_for_cookie(cookie_id: str) -> User | None:
    """Flask-Login's user loader: the user, unless the password changed since login."""
    user_id, _, fingerprint = cookie_id.partition(":")
    user = db.session.get(User, user_id)
    if user is None or not fingerprint or user.password_hash[-12:] != fingerprint:
        return None
    return user


def user_change_password(user: User, *, current: object, new: object) -> None:
    try:
        password_hasher.verify(user.password_hash, current if isinstance(current, str) else "")
    except (VerificationError, InvalidHashError) as exc:
        raise ValidationError("The current password is not right", code="INVALID_PASSWORD") from exc
    user.password_hash = password_hasher.hash(password_check(new))
    db.session.commit()


def token_issue(user: User) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": user.id,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=current_app.config["JWT_EXPIRES_SECONDS"]),
        "iss": current_app.config["JWT_ISSUER"],
        "aud": current_app.config["JWT_AUDIENCE"],
    }
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm="HS256")


def token_claims(token: str) -> dict:
    """The verified claims of one of our tokens; 401 for anything expired or forged."""
    try:
        return jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=["HS256"],
            audience=current_app.config["JWT_AUDIENCE"],
            issuer=current_app.config["JWT_ISSUER"],
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Your token has expired; log in again", code="TOKEN_EXPIRED") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("Missing or invalid authentication token", code="INVALID_TOKEN") from exc


def token_user(token: str, claims: dict | None = None) -> User:
    """The user a bearer token belongs to; 401 for anything expired, forged or unknown.
    `claims`: the token's, as `token_claims` verified them already."""
    claims = claims or token_claims(token)
    user = db.session.get(User, claims["sub"]) if isinstance(claims["sub"], str) else None
    if user is None:
        raise Unauthorized("Missing or invalid authentication token", code="INVALID_TOKEN")
    return user
