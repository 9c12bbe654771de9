"""API keys: create, list and revoke them, and find who a key presented with a request belongs to.

A key is `wag_live_<64 hex>` or `wag_test_<64 hex>`. Only its SHA-256 is stored (see
models/api_key.py for why a fast hash is right here), so the key is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from extensions import db
from models import ApiKey, User, WaSession
from models.api_key import LIVE, TEST
from models.base import as_utc
from services.errors import Forbidden, NotFound, Unauthorized, ValidationError

KEY_PREFIXES = {LIVE: "wag_live_", TEST: "wag_test_"}
# What a list shows of a key: its kind and 4 hex digits (wag_live_3f9a).
SHOWN_LENGTH = len(KEY_PREFIXES[LIVE]) + 4
MAX_ACTIVE_KEYS = 100
# Recording every use would make every API request a write; once a minute is enough to see use.
LAST_USED_EVERY = timedelta(minutes=1)


def is_api_key(credential: str) -> bool:
    """Whether a presented credential is meant as an API key (anything else is a token)."""
    return credential.startswith(tuple(KEY_PREFIXES.values()))


def key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _session_ids_check(user: User, session_ids: list[str] | None) -> list[str]:
    if session_ids is None:
        return []
    wanted = list(dict.fromkeys(session_ids))
    own = set(db.session.scalars(select(WaSession.id).where(WaSession.user_id == user.id, WaSession.id.in_(wanted))))
    unknown = [i for i in wanted if i not in own]
    if unknown:
        raise ValidationError(
            f"Not one of your sessions: {', '.join(unknown)}",
            code="INVALID_SESSION_IDS",
            details={"field": "sessionIds"},
        )
    return wanted


def _expiry_check(expires_at: object) -> datetime | None:
    if expires_at is None or expires_at == "":
        return None
    invalid = ValidationError(
        "'expiresAt' must be an ISO-8601 time in the future, e.g. 2030-01-31T00:00:00Z",
        code="INVALID_FIELD",
        details={"field": "expiresAt"},
    )
    if not isinstance(expires_at, str):
        raise invalid
    try:
        when = datetime.fromisoformat(expires_at)
    except ValueError:
        raise invalid from None
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= datetime.now(UTC):
        raise invalid
    return when


def api_key_create(
    user: User,
    *,
    name: str,
    mode: str | None = LIVE,
    session_ids: list[str] | None = None,
    expires_at: object = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which exists only in this answer.

    `name` (1 to 100 characters), `mode` (live or test) and `session_ids` (a list) are as
    the API's schema and the dashboard's form have them; that the sessions are the user's,
    and that the expiry is a time ahead, is checked here."""
    name = name.strip()
    mode = mode or LIVE
    allowed = _session_ids_check(user, session_ids)
    expiry = _expiry_check(expires_at)
    active = db.session.scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    )
    if active >= MAX_ACTIVE_KEYS:
        raise Forbidden(
            f"You have {active} active keys, the most an account may have; revoke unused ones first",
            error="Key limit reached",
            code="KEY_LIMIT_REACHED",
        )
    plaintext = KEY_PREFIXES[mode] + secrets.token_hex(32)
    key = ApiKey(
        user_id=user.id,
        name=name,
        mode=mode,
        prefix=plaintext[:SHOWN_LENGTH],
        key_hash=key_hash(plaintext),
        allowed_session_ids=allowed,
        expires_at=expiry,
    )
    db.session.add(key)
    db.session.commit()
    return key, plaintext


def api_keys_list(user: User) -> list[ApiKey]:
    """The user's keys, newest first, revoked ones included."""
    return list(db.session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at.desc())))


def api_key_revoke(user: User, key_id: str) -> ApiKey:
    """Revoke one of the user's keys for good (revoking it again changes nothing)."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id))
    if key is None:
        raise NotFound("The requested API key does not exist", error="API key not found", code="KEY_NOT_FOUND")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        db.session.commit()
    return key


def api_key_find(plaintext: str) -> ApiKey | None:
    """The key a presented credential is, usable or not, without side effects."""
    return db.session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(plaintext)))


def api_key_owner_id(plaintext: str, key: ApiKey | None = None) -> str | None:
    """The user a usable key belongs to, without side effects (for counting rate limits);
    `key`: the key as `api_key_find` found it already."""
    key = key or api_key_find(plaintext)
    if key is None or key.revoked_at is not None or key.is_expired:
        return None
    return key.user_id


def api_key_user(plaintext: str, key: ApiKey | None = None) -> tuple[User, ApiKey]:
    """The owner of a presented key and the key; 401 for an unknown, revoked or expired one.
    `key`: the key as `api_key_find` found it already."""
    key = key or api_key_find(plaintext)
    if key is None:
        raise Unauthorized("Invalid API key", code="INVALID_API_KEY")
    if key.revoked_at is not None:
        raise Unauthorized("This API key was revoked", code="API_KEY_REVOKED")
    if key.is_expired:
        raise Unauthorized("This API key has expired", code="API_KEY_EXPIRED")
    now = datetime.now(UTC)
    last_used = as_utc(key.last_used_at)
    if last_used is None or now - last_used >= LAST_USED_EVERY:
        db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        db.session.commit()
    return db.session.get(User, key.user_id), key
