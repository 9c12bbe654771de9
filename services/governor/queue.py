"""The send governor: one durable send queue per session, in Redis, and the pace it keeps.

Every outgoing message of a session (API sends, bulk batches, scheduled and retried ones)
waits in the session's queue until the governor lets it go:

- lanes: API sends share the lane "api", each bulk batch has its own; the governor takes
  from the lanes in turn, so two batches and the API interleave fairly;
- later: messages due at a time (scheduled sends, retries, a session that is offline) wait
  in a sorted set and go first once due;
- pace: at least `minGapSeconds` (or the batch's `delay`, whichever is longer) plus a
  random jitter between two sends, at most `perMinute` a minute and `perDay` a day (in the
  session's time zone), fewer during the warm-up days after pairing, none in quiet hours
  (messages wait, they are not dropped), nothing at all while the session is paused.

The database stays the record of every message: the engine host rebuilds a session's queue
from it when it takes the session up, and sends only messages the database still calls
queued, so a restart loses nothing and sends nothing twice. Time is always passed in
(`now`, Unix seconds), so the rules can be tried with a controllable clock.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis import Redis

from services.errors import ValidationError

KEY = "wagate:sendq:{}:{}"
API_LANE = "api"
# What the queue keeps of its recent sends: two days covers any time zone's "today".
SENT_KEEP_SECONDS = 2 * 86400

_PUSH = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
if redis.call('SADD', KEYS[4], ARGV[2]) == 1 then redis.call('RPUSH', KEYS[5], ARGV[2]) end
return 1
"""
# A held message that is due goes to the front of its lane, and its lane to the front of the turn.
_PROMOTE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('LREM', KEYS[5], 0, ARGV[2])
redis.call('LPUSH', KEYS[5], ARGV[2])
return 1
"""
# Take the head of the next lane in turn; the lane goes to the back while it has more.
_POP = """
local lane = redis.call('LPOP', KEYS[1])
while lane do
  local key = ARGV[1] .. lane
  local id = redis.call('LPOP', key)
  if redis.call('LLEN', key) > 0 then
    redis.call('RPUSH', KEYS[1], lane)
  else
    redis.call('SREM', KEYS[2], lane)
  end
  if id then
    redis.call('SREM', KEYS[3], id)
    return {lane, id}
  end
  lane = redis.call('LPOP', KEYS[1])
end
return false
"""


@dataclass(frozen=True)
class Pace:
    """How fast a session may send. The API names the fields in camelCase."""

    min_gap_seconds: float = 4.0
    jitter_seconds: float = 3.0
    per_minute: int = 12
    per_day: int = 1000
    warmup: tuple[int, ...] = (50, 100, 200, 400, 700)  # daily caps on days 1, 2... after pairing
    quiet_start: str | None = None  # "21:00": no sends from then...
    quiet_end: str | None = None  # ..."08:00" (the session's time zone)
    timezone: str = "UTC"
    typing: bool = False  # show "typing…" before each message, for a time that grows with its length

    def to_dict(self) -> dict:
        return {field_camel(name): list(value) if name == "warmup" else value for name, value in asdict(self).items()}

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def day_cap(self, paired_at: datetime | None, now: float) -> int:
        """Today's ceiling: per_day, or less on the warm-up days after the phone was linked."""
        day = self.warmup_day(paired_at, now)
        return self.per_day if day is None else min(self.per_day, self.warmup[day - 1])

    def warmup_day(self, paired_at: datetime | None, now: float) -> int | None:
        """Which warm-up day today is (1 on the day the phone was linked), or None past them."""
        if paired_at is None or not self.warmup:
            return None
        zone = self.zone()
        # SQLite hands back naive datetimes: they are UTC (not the server's local time).
        linked = datetime.fromtimestamp(utc_timestamp(paired_at), zone).date()
        day = (datetime.fromtimestamp(now, zone).date() - linked).days
        return day + 1 if 0 <= day < len(self.warmup) else None

    def day_start(self, now: float) -> float:
        """Midnight (Unix seconds) of `now`'s day in the pace's time zone."""
        zone = self.zone()
        return datetime.combine(datetime.fromtimestamp(now, zone).date(), clock_time(0), zone).timestamp()

    def next_day_start(self, now: float) -> float:
        """The next midnight in the pace's time zone (days may be 23 or 25 hours long)."""
        return self.day_start(self.day_start(now) + 86400 + 3600)

    def quiet_until(self, now: float) -> float | None:
        """When the quiet hours `now` falls in end (Unix seconds), or None outside them."""
        if not self.quiet_start or not self.quiet_end:
            return None
        zone = self.zone()
        local = datetime.fromtimestamp(now, zone)
        start, end = _hhmm(self.quiet_start), _hhmm(self.quiet_end)
        at = local.time()
        inside = start <= at < end if start < end else (at >= start or at < end)
        if not inside:
            return None
        day = local.date() if at < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, zone).timestamp()


PACE_FIELDS = {_field.name: _field for _field in fields(Pace)}


def field_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _hhmm(value: str) -> clock_time:
    return datetime.strptime(value, "%H:%M").time()


def pace_from(defaults: Pace, overrides: dict | None) -> Pace:
    """The defaults with a session's own settings (stored snake_case) laid over them."""
    values = asdict(defaults) | {key: value for key, value in (overrides or {}).items() if key in PACE_FIELDS}
    values["warmup"] = tuple(values["warmup"])
    return Pace(**values)


def pace_changes(body: dict) -> dict:
    """The settings a pace body changes (camelCase in, stored snake_case out).

    The body's shape (which settings, their types and ranges) is the pace schema's
    (blueprints/schemas/sessions.py), checked before it comes here: the API's `PUT .../pace`
    and the dashboard's form alike. What no schema can say is checked here: that the time
    zone exists.
    """
    by_camel = {field_camel(name): name for name in PACE_FIELDS}
    changes = {by_camel[key]: value for key, value in body.items()}
    for name in ("min_gap_seconds", "jitter_seconds"):
        if changes.get(name) is not None:
            changes[name] = float(changes[name])
    if "timezone" in changes:
        try:
            ZoneInfo(changes["timezone"])
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValidationError(
                "'timezone' must be an IANA time zone like \"Asia/Kolkata\"",
                code="INVALID_FIELD",
                details={"field": "timezone"},
            ) from None
    return changes


@dataclass(frozen=True)
class Decision:
    """What the governor says now: send `message_id` (taken from `lane`), or wait `wait`
    seconds (None: the queue is empty) because of `reason`."""

    message_id: str | None = None
    lane: str | None = None
    wait: float | None = None
    reason: str | None = None


class SendQueue:
    """One session's queue and pace state in Redis (see the module's docstring)."""

    def __init__(self, connection: Redis, session_id: str) -> None:
        self.redis = connection
        self.session_id = session_id
        self._push = connection.register_script(_PUSH)
        self._promote = connection.register_script(_PROMOTE)
        self._pop = connection.register_script(_POP)

    def key(self, name: str) -> str:
        return KEY.format(self.session_id, name)

    # -- filling --------------------------------------------------------------------------

    def push(self, message_id: str, *, lane: str = API_LANE, floor_seconds: float = 0.0) -> bool:
        """Queue a message on a lane (False if it is queued already). `floor_seconds`: the
        least gap after each of the lane's messages (a batch's delay)."""
        return bool(self._push(keys=self._lane_keys(lane), args=[message_id, lane, floor_seconds]))

    def later(self, message_id: str, due: float, *, lane: str = API_LANE, floor_seconds: float = 0.0) -> None:
        """Hold a message until `due` (a scheduled send, a retry); once due it goes to the
        front of its lane, whose turn comes next."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key("held"), message_id, f"{floor_seconds}|{lane}")
            pipe.zadd(self.key("later"), {message_id: due})
            pipe.execute()

    def forget(self, message_id: str) -> None:
        """Drop a held message (a cancelled scheduled send)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.key("later"), message_id)
            pipe.hdel(self.key("held"), message_id)
            pipe.execute()

    def _lane_keys(self, lane: str) -> list[str]:
        return [self.key("ids"), self.key(f"lane:{lane}"), self.key("floors"), self.key("laneset"), self.key("lanes")]

    def _promote_due(self, now: float) -> None:
        """Held messages whose time has come join the front of their lanes, earliest first."""
        due = self.redis.zrangebyscore(self.key("later"), "-inf", now)
        for raw in reversed(due):
            message_id = _text(raw)
            if not self.redis.zrem(self.key("later"), message_id):
                continue  # forgotten (or taken) meanwhile
            floor, _, lane = _text(self.redis.hget(self.key("held"), message_id) or f"0|{API_LANE}").partition("|")
            self.redis.hdel(self.key("held"), message_id)
            self._promote(keys=self._lane_keys(lane), args=[message_id, lane, floor])

    # -- taking ---------------------------------------------------------------------------

    def take(self, pace: Pace, now: float, *, paired_at: datetime | None = None, paused: bool = False) -> Decision:
        """The next message to send now, or how long to wait and why."""
        later_due = self.earliest_later()
        ready = self.redis.llen(self.key("lanes")) > 0 or (later_due is not None and later_due <= now)
        if not ready:
            return Decision(wait=None if later_due is None else later_due - now, reason="empty")
        if paused:
            return Decision(wait=None, reason="paused")
        blocked = self.blocked_until(pace, now, paired_at=paired_at)
        if blocked is not None:
            return Decision(wait=blocked[0] - now, reason=blocked[1])
        if later_due is not None and later_due <= now:
            self._promote_due(now)
        taken = self._pop(keys=[self.key("lanes"), self.key("laneset"), self.key("ids")], args=[self.key("lane:")])
        if not taken:  # the lanes emptied under us: look again
            return self.take(pace, now, paired_at=paired_at, paused=paused)
        lane, message_id = (_text(part) for part in taken)
        return Decision(message_id=message_id, lane=lane)

    def blocked_until(self, pace: Pace, now: float, *, paired_at: datetime | None = None) -> tuple[float, str] | None:
        """(when, why) the pace next allows a send, if not now."""
        quiet = pace.quiet_until(now)
        if quiet is not None:
            return quiet, "quiet_hours"
        next_at = self.redis.get(self.key("next"))
        if next_at is not None and float(next_at) > now:
            return float(next_at), "gap"
        recent = self.redis.zrangebyscore(self.key("sent"), f"({now - 60!r}", "+inf", withscores=True)
        if len(recent) >= pace.per_minute:
            return recent[-pace.per_minute][1] + 60, "per_minute"
        cap = pace.day_cap(paired_at, now)
        if self.sent_today(pace, now) >= cap:
            return pace.next_day_start(now), "warmup" if cap < pace.per_day else "per_day"
        return None

    def sent(
        self, message_id: str, lane: str | None, pace: Pace, now: float, *, rng: random.Random | None = None
    ) -> float:
        """Count a send; returns when the next may go: after the longer of the pace's gap and
        the lane's floor, plus jitter."""
        floor = float(self.redis.hget(self.key("floors"), lane) or 0) if lane else 0.0
        jitter = (rng or random).uniform(0, pace.jitter_seconds) if pace.jitter_seconds else 0.0
        next_at = now + max(pace.min_gap_seconds, floor) + jitter
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.key("sent"), {f"{now:.6f}:{message_id}": now})
            pipe.zremrangebyscore(self.key("sent"), "-inf", now - SENT_KEEP_SECONDS)
            pipe.set(self.key("next"), repr(next_at), ex=int(max(next_at - now, 0)) + 3600)
            pipe.execute()
        return next_at

    def gap_restart(self, lane: str | None, pace: Pace, now: float) -> float:
        """Start the gap after a send counted earlier (when it was taken) again from `now`,
        once it has really gone: the longer of the pace's gap and the lane's floor (no jitter)."""
        floor = float(self.redis.hget(self.key("floors"), lane) or 0) if lane else 0.0
        next_at = now + max(pace.min_gap_seconds, floor)
        self.redis.set(self.key("next"), repr(next_at), ex=int(max(next_at - now, 0)) + 3600)
        return next_at

    # -- reading --------------------------------------------------------------------------

    def depth(self) -> int:
        """Messages waiting: queued on a lane or held for later."""
        return self.redis.scard(self.key("ids")) + self.redis.zcard(self.key("later"))

    def lanes(self) -> int:
        return self.redis.llen(self.key("lanes"))

    def sent_today(self, pace: Pace, now: float) -> int:
        """Sends since midnight in the pace's time zone."""
        return self.sent_since(pace.day_start(now))

    def sent_since(self, since: float) -> int:
        return self.redis.zcount(self.key("sent"), since, "+inf")

    def next_at(self) -> float | None:
        value = self.redis.get(self.key("next"))
        return float(value) if value is not None else None

    def earliest_later(self) -> float | None:
        """When the first message held for later is due (None: none is held)."""
        head = self.redis.zrange(self.key("later"), 0, 0, withscores=True)
        return head[0][1] if head else None

    # -- health ---------------------------------------------------------------------------

    def outcome(self, code: str | None, window: int) -> list[str]:
        """Record how a send ended ("ok" or its error code); the last `window` outcomes."""
        key = self.key("outcomes")
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, code or "ok")
            pipe.ltrim(key, 0, window - 1)
            pipe.lrange(key, 0, window - 1)
            return [_text(item) for item in pipe.execute()[2]]

    def outcome_many(self, codes: list[str | None], window: int) -> list[list[str]]:
        """Record a group of sends' outcomes in their order (one round trip); the last
        `window` outcomes as they stood after each of them."""
        key = self.key("outcomes")
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(key, 0, window - 1)
            pipe.lpush(key, *(code or "ok" for code in codes))
            pipe.ltrim(key, 0, window - 1)
            before = [_text(item) for item in pipe.execute()[0]]
        recorded = [code or "ok" for code in codes]
        return [(recorded[: count + 1][::-1] + before)[:window] for count in range(len(recorded))]

    def outcomes_clear(self) -> None:
        self.redis.delete(self.key("outcomes"))

    def clear(self) -> None:
        """Everything of the session's queue (a deleted session)."""
        for name in ("ids", "floors", "laneset", "lanes", "later", "held", "sent", "next", "outcomes"):
            self.redis.delete(self.key(name))
        for lane_key in self.redis.scan_iter(match=self.key("lane:*")):
            self.redis.delete(lane_key)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def utc_timestamp(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
