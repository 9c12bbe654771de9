"""Subscription plans, stored as data (seeded by the initial migration)."""

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db


class Plan(db.Model):
    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer, default=0)
    price_inr: Mapped[int] = mapped_column(Integer, default=0)
    max_sessions: Mapped[int] = mapped_column(Integer, default=1)
    api_rate_limit: Mapped[str] = mapped_column(String(64), default="100 per 15 minutes")
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Messages a day (UTC), or a trial's fixed total over `trial_days` from signup; None for no limit.
    daily_message_limit: Mapped[int | None] = mapped_column(Integer)
    trial_message_limit: Mapped[int | None] = mapped_column(Integer)
    trial_days: Mapped[int | None] = mapped_column(Integer)

    @property
    def is_trial(self) -> bool:
        return self.trial_message_limit is not None

    def has_feature(self, feature: str) -> bool:
        return feature in (self.features or [])

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "priceInr": self.price_inr,
            "maxSessions": self.max_sessions,
            "apiRateLimit": self.api_rate_limit,
            "features": list(self.features or []),
            "dailyMessageLimit": self.daily_message_limit,
            "trialMessageLimit": self.trial_message_limit,
            "trialDays": self.trial_days,
        }
