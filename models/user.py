"""Accounts."""

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import isoformat, new_id, utcnow
from models.plan import Plan


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    plan: Mapped[Plan] = relationship(lazy="joined")

    # Flask-Login: the cookie names the password too, so changing it logs out every browser.
    is_active = True
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.password_hash[-12:]}"

    def to_dict(self) -> dict:
        return {"userId": self.id, "email": self.email, "username": self.username}

    def to_account_dict(self) -> dict:
        return {
            **self.to_dict(),
            "isAdmin": self.is_admin,
            "plan": self.plan.to_dict(),
            "createdAt": isoformat(self.created_at),
        }
