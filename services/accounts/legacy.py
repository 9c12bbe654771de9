"""The legacy single-session API's caller: a token's owner, or the legacy owner for trusted networks."""

from __future__ import annotations

import ipaddress
import secrets

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import User, WaSession
from services.accounts.users import TOP_PLAN, password_hasher
from services.errors import Unauthorized


def request_is_trusted(remote_addr: str | None) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in current_app.config["TRUSTED_NETWORKS"])


def legacy_owner_id() -> str | None:
    """The legacy owner's id, once the account exists (it never changes, so it is kept)."""
    known = current_app.extensions.get("wagate.legacy_owner_id")
    if known is None:
        email = current_app.config["LEGACY_OWNER_EMAIL"].lower()
        known = db.session.scalar(select(User.id).where(User.email == email))
        if known is not None:
            current_app.extensions["wagate.legacy_owner_id"] = known
    return known


def legacy_owner() -> User:
    """The account credential-less legacy scripts act as (made on first use if configured)."""
    email = current_app.config["LEGACY_OWNER_EMAIL"].lower()
    user = db.session.scalar(select(User).where(User.email == email))
    if user is not None:
        return user
    if not current_app.config["LEGACY_OWNER_AUTO_CREATE"]:
        raise Unauthorized(
            f"No legacy owner account: register {email} (LEGACY_OWNER_EMAIL) or send a token",
            code="LEGACY_OWNER_MISSING",
        )
    # Nobody logs in as this account: its password is random and never shown.
    user = User(
        email=email,
        username="legacy",
        password_hash=password_hasher.hash(secrets.token_urlsafe(32)),
        plan_id=TOP_PLAN,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        user = db.session.scalar(select(User).where(User.email == email))
    return user


def legacy_session(user: User) -> WaSession | None:
    """The single session of the legacy API: the user's oldest."""
    return db.session.scalar(
        select(WaSession).where(WaSession.user_id == user.id).order_by(WaSession.created_at).limit(1)
    )
