"""Message quotas: each plan's messages per UTC day, or a trial's fixed total over its window.

A send reserves its slot when it is accepted (the reservation and the message commit
together), and the slot is refunded when the send finally fails for a transient reason on
WhatsApp's side (aulm's refund matrix): the engine timed out, WhatsApp was unreachable,
answered 5xx or refused the credentials, or was overloaded. Client errors keep the slot:
an unknown recipient, a session that is not ready, a message WhatsApp rejects.

Every account's usage is counted, also on plans without a limit, so the dashboard can show it.
Test keys' simulated sends are never counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models import Message, Plan, QuotaUsage, User
from models.base import as_utc, isoformat
from models.quota import TRIAL_PERIOD
from services.errors import ApiError, ValidationError

# Engine failure codes on WhatsApp's side: the slot comes back (see engines/base.py).
REFUNDED_ERRORS = frozenset({"ENGINE_TIMEOUT", "UNREACHABLE", "UPSTREAM_ERROR", "UPSTREAM_AUTH", "OVERLOADED"})


@dataclass(frozen=True)
class Quota:
    """Where an account stands in its current quota period."""

    period: str  # "2026-11-23" (a UTC day) or "trial"
    limit: int | None  # None: no limit on this plan
    used: int
    resets_at: datetime  # the next UTC midnight, or the end of the trial
    ended: bool = False  # a trial whose window is over

    @property
    def is_trial(self) -> bool:
        return self.period == TRIAL_PERIOD

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    def headers(self) -> dict[str, str]:
        """X-RateLimit-* for a send reply: the message quota (none for a plan without one)."""
        if self.limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.resets_at.timestamp())),
        }

    def to_dict(self) -> dict:
        return {
            "period": "trial" if self.is_trial else "day",
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "resetsAt": isoformat(self.resets_at),
            "trialEnded": self.ended,
        }


def _period(user: User, now: datetime) -> tuple[str, int | None, datetime, bool]:
    plan = user.plan
    if plan.is_trial:
        ends = as_utc(user.created_at) + timedelta(days=plan.trial_days or 0)
        return TRIAL_PERIOD, plan.trial_message_limit, ends, now >= ends
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=UTC)
    return now.date().isoformat(), plan.daily_message_limit, midnight, False


def quota_get(user: User, now: datetime | None = None) -> Quota:
    period, limit, resets_at, ended = _period(user, now or datetime.now(UTC))
    used = db.session.scalar(select(QuotaUsage.used).where(QuotaUsage.user_id == user.id, QuotaUsage.period == period))
    return Quota(period, limit, used or 0, resets_at, ended)


def quota_reserve(user: User, count: int = 1) -> Quota:
    """Take `count` slots in the caller's transaction (they commit with it), or refuse.

    402 when a trial is over, 429 when the slots are not there (Retry-After: when they are).
    The check and the take are one conditional UPDATE, so concurrent sends never overshoot.
    """
    now = datetime.now(UTC)
    period, limit, resets_at, ended = _period(user, now)
    if ended:
        raise ApiError(
            f"Your free trial ended on {isoformat(resets_at)}; choose a plan to keep sending",
            error="Subscription required",
            code="SUBSCRIPTION_REQUIRED",
            status=402,
        )
    _usage_row(user.id, period)
    taking = update(QuotaUsage).where(QuotaUsage.user_id == user.id, QuotaUsage.period == period)
    if limit is not None:
        taking = taking.where(QuotaUsage.used + count <= limit)
    taken = db.session.execute(taking.values(used=QuotaUsage.used + count)).rowcount
    quota = quota_get(user, now)
    if not taken:
        db.session.rollback()
        raise _exhausted(quota, count)
    return quota


def _usage_row(user_id: str, period: str) -> None:
    """Make sure the period's counter exists (a no-op when a concurrent request made it)."""
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(QuotaUsage).values(user_id=user_id, period=period, used=0).on_conflict_do_nothing())


def _exhausted(quota: Quota, wanted: int) -> ApiError:
    retry_after = max(1, math.ceil((quota.resets_at - datetime.now(UTC)).total_seconds()))
    if quota.is_trial:
        message = (
            f"Your trial's {quota.limit} messages are used up ({quota.remaining} left, {wanted} needed); "
            "choose a plan to keep sending"
        )
        code = "TRIAL_QUOTA_EXCEEDED"
    else:
        message = (
            f"Today's quota of {quota.limit} messages is used up ({quota.remaining} left, {wanted} needed); "
            f"it resets at {isoformat(quota.resets_at)} (UTC midnight)"
        )
        code = "DAILY_QUOTA_EXCEEDED"
    return ApiError(
        message,
        error="Message quota exceeded",
        code=code,
        status=429,
        details={"quota": quota.to_dict()},
        headers=quota.headers() | {"Retry-After": str(retry_after)},
    )


def quota_release(user_id: str, period: str, count: int = 1) -> None:
    """Give back slots that no message holds (in the caller's transaction)."""
    db.session.execute(
        update(QuotaUsage)
        .where(QuotaUsage.user_id == user_id, QuotaUsage.period == period, QuotaUsage.used >= count)
        .values(used=QuotaUsage.used - count)
    )


def quota_refund(message: Message) -> bool:
    """Give back the message's slot, once however often it is asked (in the caller's transaction)."""
    period = message.quota_period
    if period is None:
        return False
    cleared = db.session.execute(
        update(Message)
        .where(Message.id == message.id, Message.quota_period.is_not(None))
        .values(quota_period=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    message.quota_period = None
    if cleared:
        quota_release(message.user_id, period)
    return bool(cleared)


def quota_refunds(error_code: str | None) -> bool:
    return error_code in REFUNDED_ERRORS


def plan_quota_set(
    plan_id: str, *, daily: int | None = None, trial: int | None = None, trial_days: int | None = None
) -> Plan:
    """Give a plan a daily limit, a trial (a total over `trial_days` from signup), or neither (unlimited)."""
    plan = db.session.get(Plan, plan_id)
    if plan is None:
        known = ", ".join(db.session.scalars(select(Plan.id).order_by(Plan.rank)))
        raise ValidationError(f"Unknown plan {plan_id!r}; known plans: {known}", code="UNKNOWN_PLAN")
    if daily is not None and trial is not None:
        raise ValidationError("A plan has a daily limit or a trial, not both", code="INVALID_FIELD")
    if trial is not None and not trial_days:
        raise ValidationError("A trial needs its length in days", code="INVALID_FIELD")
    for value in (daily, trial, trial_days):
        if value is not None and value < 1:
            raise ValidationError("Limits and days must be at least 1", code="INVALID_FIELD")
    plan.daily_message_limit = daily
    plan.trial_message_limit = trial
    plan.trial_days = trial_days if trial is not None else None
    db.session.commit()
    return plan


def plan_quota_describe(plan: Plan) -> str:
    if plan.is_trial:
        return f"{plan.trial_message_limit} messages in total over the first {plan.trial_days} days (trial)"
    if plan.daily_message_limit is not None:
        return f"{plan.daily_message_limit} messages a day (UTC)"
    return "unlimited messages"
