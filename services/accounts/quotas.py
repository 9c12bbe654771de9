"""Message quotas: each plan's messages per UTC day, or a trial's fixed total over its window.

A send reserves its slot when it is accepted, and the slot is refunded when the send
finally fails for a transient reason on WhatsApp's side (aulm's refund matrix): the engine
timed out, WhatsApp was unreachable, answered 5xx or refused the credentials, or was
overloaded. Client errors keep the slot: an unknown recipient, a session that is not
ready, a message WhatsApp rejects.

The database is the record: a message holds its slot in its `quota_period` (cleared, once,
when the slot is refunded), and the slots kept by sends refused before a message was
stored are counted per period in `quota_usage`. What a period has used is the sum of the
two. Concurrent sends check the limit against a counter in Redis instead of a row every
send of the account would have to lock: one script checks and takes the slots atomically.
The counter is filled from the database when Redis does not have it (a new period, a
restarted stand-in, a lost key), follows each reservation, rollback and refund, and
expires a day after its period ends. Every account's usage is counted, also on plans
without a limit, so the dashboard can show it. Test keys' simulated sends are never counted.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from extensions import db, queues
from models import Message, Plan, QuotaUsage, User, WaSession
from models.base import as_utc, isoformat
from models.quota import TRIAL_PERIOD
from services.errors import ApiError, ValidationError
from services.platform.outages import is_outage, outage_rollback

log = logging.getLogger(__name__)

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


COUNTER_KEY = "wagate:quota:{}:{}"
# How long a counter outlives its period (late refunds of its messages still find it).
COUNTER_GRACE_SECONDS = 86400
# Check and take `ARGV[1]` slots under the limit `ARGV[2]` (negative: none). A missing
# counter is filled first by the caller, except on a plan without a limit, whose usage the
# database alone tells. -> {taken (1/0, -1: no counter), used after}
_RESERVE = """
local used = redis.call('GET', KEYS[1])
local wanted, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if not used then
  if limit < 0 then return {1, -1} end
  return {-1, 0}
end
used = tonumber(used)
if limit >= 0 and used + wanted > limit then return {0, used} end
return {1, redis.call('INCRBY', KEYS[1], wanted)}
"""
# Give back `ARGV[1]` slots of a counter that exists, never below zero.
_RELEASE = """
local used = redis.call('GET', KEYS[1])
if not used then return -1 end
local left = math.max(tonumber(used) - tonumber(ARGV[1]), 0)
redis.call('SET', KEYS[1], left, 'KEEPTTL')
return left
"""
# Slot changes waiting for the database transaction they belong to (Session.info keys).
ON_COMMIT, ON_ROLLBACK = "wagate.quota.on_commit", "wagate.quota.on_rollback"


def _now() -> datetime:
    return datetime.now(UTC)


def quota_get(user: User, now: datetime | None = None) -> Quota:
    period, limit, resets_at, ended = _period(user, now or _now())
    if limit is None:
        used = quota_used(user.id, period)
    else:
        used = _counter(user.id, period, resets_at)
    return Quota(period, limit, used, resets_at, ended)


def quota_headers(user: User) -> dict[str, str]:
    """X-RateLimit-* of the user's message quota (none, and no lookup, on a plan without one).

    None either while Redis or the database is down: they describe an answer (a send that
    was stored is answered as accepted), they are not worth failing it for.
    """
    try:
        now = _now()
        if _period(user, now)[1] is None:
            return {}
        return quota_get(user, now).headers()
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("an answer without its quota headers: %s", exc)
        outage_rollback()
        return {}


def quota_used(user_id: str, period: str) -> int:
    """The period's slots as the database records them: its messages' and the kept ones."""
    held = db.session.scalar(
        select(func.count()).select_from(Message).where(Message.user_id == user_id, Message.quota_period == period)
    )
    kept = db.session.scalar(select(QuotaUsage.kept).where(QuotaUsage.user_id == user_id, QuotaUsage.period == period))
    return (held or 0) + (kept or 0)


def _counter(user_id: str, period: str, resets_at: datetime) -> int:
    """The period's live counter, filled from the database if Redis does not have it."""
    key = COUNTER_KEY.format(user_id, period)
    used = queues.connection.get(key)
    if used is None:
        _counter_fill(key, user_id, period, resets_at)
        used = queues.connection.get(key)
    return int(used)


def _counter_fill(key: str, user_id: str, period: str, resets_at: datetime) -> None:
    """Start the counter at what the database records (unless a concurrent request just did)."""
    expires = int((resets_at - _now()).total_seconds()) + COUNTER_GRACE_SECONDS
    queues.connection.set(key, quota_used(user_id, period), nx=True, ex=max(expires, 60))


def quota_reserve(user: User, count: int = 1) -> Quota:
    """Take `count` slots for the caller's transaction, or refuse: they stay taken when it
    commits (with the messages that hold them, or kept by `quota_keep`) and come back if it
    rolls back.

    402 when a trial is over, 429 when the slots are not there (Retry-After: when they are).
    The check and the take are one script on the counter, so concurrent sends never overshoot.
    """
    now = _now()
    period, limit, resets_at, ended = _period(user, now)
    if ended:
        raise ApiError(
            f"Your free trial ended on {isoformat(resets_at)}; choose a plan to keep sending",
            error="Subscription required",
            code="SUBSCRIPTION_REQUIRED",
            status=402,
        )
    key = COUNTER_KEY.format(user.id, period)
    reserve = queues.connection.register_script(_RESERVE)
    taken, used = reserve(keys=[key], args=[count, -1 if limit is None else limit])
    if taken == -1:
        _counter_fill(key, user.id, period, resets_at)
        taken, used = reserve(keys=[key], args=[count, limit])
    if not taken:
        raise _exhausted(Quota(period, limit, int(used), resets_at), count)
    if used >= 0:  # a counter that exists follows the transaction
        _after(ON_ROLLBACK, key, count)
    return Quota(period, limit, max(int(used), 0), resets_at)


def quota_keep(user_id: str, period: str, count: int = 1) -> None:
    """Record slots reserved by a send that was refused before a message was stored (in the
    caller's transaction): a client error keeps its slot."""
    _usage_row(user_id, period)
    db.session.execute(
        update(QuotaUsage)
        .where(QuotaUsage.user_id == user_id, QuotaUsage.period == period)
        .values(kept=QuotaUsage.kept + count)
    )


def quota_keep_for_session(session: WaSession) -> None:
    """Before a session's messages are deleted with it: the slots they hold stay taken."""
    held = db.session.execute(
        select(Message.quota_period, func.count())
        .where(Message.session_id == session.id, Message.quota_period.is_not(None))
        .group_by(Message.quota_period)
    ).all()
    for period, count in held:
        quota_keep(session.user_id, period, count)


def _usage_row(user_id: str, period: str) -> None:
    """Make sure the period's row exists (a no-op when a concurrent request made it)."""
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(QuotaUsage).values(user_id=user_id, period=period, kept=0).on_conflict_do_nothing())


def _after(moment: str, key: str, count: int) -> None:
    """Give `count` slots back to the counter `key` when the caller's transaction ends so."""
    db.session().info.setdefault(moment, []).append((queues.connection, key, count))


def _release_all(changes: list[tuple]) -> None:
    """Give slots back to their counters; one Redis cannot reach now is dropped instead (it
    is filled again from the database when next asked for), since this runs as a transaction
    ends and must not fail it."""
    for connection, key, count in changes:
        try:
            connection.register_script(_RELEASE)(keys=[key], args=[count])
        except Exception as exc:
            if not is_outage(exc):
                raise
            _counter_drop(connection, key, count, exc)


def _counter_drop(connection, key: str, count: int, exc: Exception) -> None:
    log.warning("quota counter %s not updated (%s): dropped, to be filled again from the database", key, exc)
    try:
        connection.delete(key)
    except Exception as again:
        if not is_outage(again):
            raise
        log.warning("quota counter %s not dropped either: it may count %d too many until it expires", key, count)


@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    session.info.pop(ON_ROLLBACK, None)
    changes = session.info.pop(ON_COMMIT, None)
    if changes:
        _release_all(changes)


@event.listens_for(Session, "after_transaction_end")
def _on_end(session: Session, transaction) -> None:
    """A transaction that ended without committing (rolled back, or closed) takes its
    reservations back and drops its refunds."""
    if transaction.parent is not None:
        return
    session.info.pop(ON_COMMIT, None)
    changes = session.info.pop(ON_ROLLBACK, None)
    if changes:
        _release_all(changes)


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


def quota_refund(message: Message) -> bool:
    """Give back the message's slot, once however often it is asked (when the caller's
    transaction commits)."""
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
        _after(ON_COMMIT, COUNTER_KEY.format(message.user_id, period), 1)
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
