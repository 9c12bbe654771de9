"""API keys: long-lived credentials for scripts, live or test, optionally limited to some sessions."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import as_utc, isoformat, new_id, utcnow

LIVE = "live"
TEST = "test"


class ApiKey(db.Model):
    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(8), default=LIVE)
    # The start of the key (wag_live_3f9a), enough to tell keys apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the whole key; the key itself is shown once and never stored. A fast hash
    # is enough here, unlike for passwords: a key is 256 random bits, so nobody can guess
    # their way back from a leaked hash however cheap each guess is. Being unsalted and
    # deterministic, it is also what a request's key is looked up by (an indexed equality,
    # so no secret is ever compared byte by byte in Python).
    key_hash: Mapped[str] = mapped_column(String(64))
    # Session ids the key may use; empty means every session of the owner.
    allowed_session_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def is_test(self) -> bool:
        return self.mode == TEST

    @property
    def is_restricted(self) -> bool:
        return bool(self.allowed_session_ids)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and as_utc(self.expires_at) <= utcnow()

    def allows(self, session_id: str) -> bool:
        return not self.allowed_session_ids or session_id in self.allowed_session_ids

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "mode": self.mode,
            "prefix": self.prefix,
            "sessionIds": list(self.allowed_session_ids or []),
            "expiresAt": isoformat(self.expires_at),
            "lastUsedAt": isoformat(self.last_used_at),
            "createdAt": isoformat(self.created_at),
            "revoked": self.revoked_at is not None,
            "revokedAt": isoformat(self.revoked_at),
        }
