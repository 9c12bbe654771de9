"""Message slots an account keeps in a quota period (a UTC day, or its trial) without a message.

A stored message holds its own slot (its `quota_period`); a send refused before its message
was stored (a session that was not ready) keeps its slot here.
"""

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db

TRIAL_PERIOD = "trial"


class QuotaUsage(db.Model):
    __tablename__ = "quota_usage"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # "2026-11-23" for a daily plan's UTC day, "trial" for a trial's whole window.
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    kept: Mapped[int] = mapped_column(Integer, default=0)
