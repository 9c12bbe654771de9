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
from string import Template
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis import Redis

from services.errors import ValidationError
from services.platform.metrics import pace_decided

KEY = "wagate:sendq:{}:{}"
API_LANE = "api"
# What the queue keeps of its sends, as counts per quarter of an hour (every time zone's
# midnight falls on one): two days covers any time zone's "today".
SENT_KEEP_SECONDS = 2 * 86400
QUARTER_SECONDS = 900
# Each send of the last minutes, one by one, for the per-minute ceiling; kept twice as long
# as the ceiling looks back, so a clock a minute behind another still counts right.
RECENT_KEEP_SECONDS = 120

# Lua shared by the scripts below. The pace's state: `recent` (a sorted set of the sends of
# the last RECENT_KEEP_SECONDS, by time), `quarters` (a hash: sends per quarter of an hour,
# keyed by its number since the epoch) and `today` (a cache of the count since a midnight:
# {since, count}). Times come in as Python's repr of a float and go back as strings, never
# as Lua numbers (Redis turns those into integers).
_COUNTING = Template("""
local function count_since(recent, quarters, since, first, first_start)
  local total = redis.call('ZCOUNT', recent, since, '(' .. first_start)
  local counts = redis.call('HGETALL', quarters)
  for i = 1, #counts, 2 do
    if tonumber(counts[i]) >= tonumber(first) then total = total + tonumber(counts[i + 1]) end
  end
  return total
end
local function today_count(recent, quarters, today, since, first, first_start)
  local cached = redis.call('HMGET', today, 'since', 'count')
  if cached[1] == since then return tonumber(cached[2]) end
  local count = count_since(recent, quarters, since, first, first_start)
  redis.call('HSET', today, 'since', since, 'count', count)
  redis.call('EXPIRE', today, ${keep})
  return count
end
-- A queue written before the counters kept every send in the sorted set `sent`: count it
-- into the quarters (and its last minutes into `recent`) once, then drop it.
local function migrate(old, recent, quarters, today)
  if redis.call('EXISTS', old) == 0 then return end
  local newest = redis.call('ZREVRANGE', old, 0, 0, 'WITHSCORES')
  if #newest > 0 then
    local last = math.floor(tonumber(newest[2]) / ${quarter})
    for quarter = last - ${quarters}, last do
      local count = redis.call('ZCOUNT', old, quarter * ${quarter}, '(' .. ((quarter + 1) * ${quarter}))
      if count > 0 then redis.call('HINCRBY', quarters, quarter, count) end
    end
    local kept = redis.call('ZRANGEBYSCORE', old, tonumber(newest[2]) - ${recent}, '+inf', 'WITHSCORES')
    for i = 1, #kept, 2 do redis.call('ZADD', recent, kept[i + 1], kept[i]) end
    redis.call('EXPIRE', quarters, ${keep})
  end
  redis.call('DEL', today)
  redis.call('UNLINK', old)
end
""").substitute(
    keep=SENT_KEEP_SECONDS,
    quarter=QUARTER_SECONDS,
    quarters=SENT_KEEP_SECONDS // QUARTER_SECONDS,
    recent=RECENT_KEEP_SECONDS,
)

# Queue ids on a lane (those not queued already); the lane joins the turn if it is new.
# KEYS: ids, lane, floors, laneset, lanes. ARGV: lane, floor, id...
_PUSH = """
local pushed = 0
for i = 3, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    pushed = pushed + 1
  end
end
if pushed > 0 then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  if redis.call('SADD', KEYS[4], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[5], ARGV[1]) end
end
return pushed
"""

# One decision in one round trip. "check" only says what the pace waits for ({why, when}, or
# {'free'}); "take" first looks whether anything is ready, then at the pace, then moves the
# held messages that are due to the front of their lanes (earliest first, their lanes to the
# front of the turn) and takes the head of the next lane in turn (the lane goes to the back
# while it has more).
# KEYS: lanes, laneset, ids, later, held, next, recent, quarters, today, old sent, floors.
# ARGV: mode, now, lane key prefix, paused, quiet until, per minute, day cap, day since,
# its first whole quarter, that quarter's start.
_TAKE = _COUNTING + Template("""
migrate(KEYS[10], KEYS[7], KEYS[8], KEYS[9])
local now = tonumber(ARGV[2])
local due = false
if ARGV[1] == 'take' then
  local head = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  due = #head > 0 and tonumber(head[2]) <= now
  if not due and redis.call('LLEN', KEYS[1]) == 0 then
    if #head > 0 then return {'empty', head[2]} end
    return {'empty'}
  end
  if ARGV[4] == '1' then return {'paused'} end
end
if ARGV[5] ~= '' then return {'quiet_hours', ARGV[5]} end
local next_at = redis.call('GET', KEYS[6])
if next_at and tonumber(next_at) > now then return {'gap', next_at} end
local per_minute = tonumber(ARGV[6])
local nth = redis.call('ZREVRANGE', KEYS[7], per_minute - 1, per_minute - 1, 'WITHSCORES')
if #nth > 0 and tonumber(nth[2]) > now - 60 then return {'per_minute', nth[2]} end
if today_count(KEYS[7], KEYS[8], KEYS[9], ARGV[8], ARGV[9], ARGV[10]) >= tonumber(ARGV[7]) then
  return {'per_day'}
end
if ARGV[1] ~= 'take' then return {'free'} end
if due then
  local held = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
  for i = #held, 1, -1 do
    local id = held[i]
    local spec = redis.call('HGET', KEYS[5], id) or '0|${api}'
    redis.call('ZREM', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    local bar = string.find(spec, '|', 1, true)
    local lane = string.sub(spec, bar + 1)
    if redis.call('SADD', KEYS[3], id) == 1 then
      redis.call('LPUSH', ARGV[3] .. lane, id)
      redis.call('HSET', KEYS[11], lane, string.sub(spec, 1, bar - 1))
      redis.call('SADD', KEYS[2], lane)
      redis.call('LREM', KEYS[1], 0, lane)
      redis.call('LPUSH', KEYS[1], lane)
    end
  end
end
local lane = redis.call('LPOP', KEYS[1])
while lane do
  local key = ARGV[3] .. lane
  local id = redis.call('LPOP', key)
  if redis.call('LLEN', key) > 0 then
    redis.call('RPUSH', KEYS[1], lane)
  else
    redis.call('SREM', KEYS[2], lane)
  end
  if id then
    redis.call('SREM', KEYS[3], id)
    return {'send', lane, id}
  end
  lane = redis.call('LPOP', KEYS[1])
end
local head = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if #head > 0 then return {'empty', head[2]} end
return {'empty'}
""").substitute(api=API_LANE)

# Count a send and set when the next may go: after the longer of the pace's gap and the
# lane's floor, plus jitter.
# KEYS: floors, next, recent, quarters, today, old sent. ARGV: now, lane ('' for none), gap,
# jitter, the send's record in `recent`, its quarter, day since, its first whole quarter,
# that quarter's start, what `recent` no longer needs.
_SENT = _COUNTING + Template("""
migrate(KEYS[6], KEYS[3], KEYS[4], KEYS[5])
local now = tonumber(ARGV[1])
local floor = 0
if ARGV[2] ~= '' then floor = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0') end
local next_at = now + math.max(tonumber(ARGV[3]), floor) + tonumber(ARGV[4])
local shown = string.format('%.17g', next_at)
redis.call('SET', KEYS[2], shown, 'EX', math.floor(math.max(next_at - now, 0)) + 3600)
local cached = redis.call('HGET', KEYS[5], 'since')
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[10])
redis.call('EXPIRE', KEYS[3], ${recent})
if redis.call('HINCRBY', KEYS[4], ARGV[6], 1) == 1 then
  local oldest = tonumber(ARGV[6]) - ${quarters}
  for _, quarter in ipairs(redis.call('HKEYS', KEYS[4])) do
    if tonumber(quarter) < oldest then redis.call('HDEL', KEYS[4], quarter) end
  end
end
redis.call('EXPIRE', KEYS[4], ${keep})
if cached == ARGV[7] then
  redis.call('HINCRBY', KEYS[5], 'count', 1)
else
  today_count(KEYS[3], KEYS[4], KEYS[5], ARGV[7], ARGV[8], ARGV[9])
end
return shown
""").substitute(recent=3 * RECENT_KEEP_SECONDS, quarters=SENT_KEEP_SECONDS // QUARTER_SECONDS, keep=SENT_KEEP_SECONDS)

# Spend room under a limit, if the room is known. KEYS: room. ARGV: how much.
_SPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('DECRBY', KEYS[1], ARGV[1])
"""

# Sends since a time. KEYS: recent, quarters, today, old sent. ARGV: mode ('today' reads and
# fills the cache), since, its first whole quarter, that quarter's start.
_COUNT = (
    _COUNTING
    + """
migrate(KEYS[4], KEYS[1], KEYS[2], KEYS[3])
if ARGV[1] == 'today' then return today_count(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4]) end
return count_since(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4])
"""
)


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
    """One session's queue and pace state in Redis (see the module's docstring).

    The pace is kept as counters per window, so no decision reads the history: the sends of
    the last minutes one by one (the per-minute ceiling reads the `perMinute`-th latest by
    rank), counts per quarter of an hour (today's count is summed from them once a day, or
    when the time zone changes, then kept as a running count), and when the next may go.
    `take` and `sent` are one round trip each.
    """

    def __init__(self, connection: Redis, session_id: str) -> None:
        self.redis = connection
        self.session_id = session_id
        self._push = connection.register_script(_PUSH)
        self._take = connection.register_script(_TAKE)
        self._sent = connection.register_script(_SENT)
        self._count = connection.register_script(_COUNT)
        self._spend = connection.register_script(_SPEND)

    def key(self, name: str) -> str:
        return KEY.format(self.session_id, name)

    # -- filling --------------------------------------------------------------------------

    def push(self, message_id: str, *, lane: str = API_LANE, floor_seconds: float = 0.0) -> bool:
        """Queue a message on a lane (False if it is queued already). `floor_seconds`: the
        least gap after each of the lane's messages (a batch's delay)."""
        return self.push_many([message_id], lane=lane, floor_seconds=floor_seconds) == 1

    def push_many(self, message_ids: list[str], *, lane: str = API_LANE, floor_seconds: float = 0.0) -> int:
        """Queue messages on a lane in this order, in one round trip; returns how many were
        not queued already."""
        if not message_ids:
            return 0
        keys = [self.key("ids"), self.key(f"lane:{lane}"), self.key("floors"), self.key("laneset"), self.key("lanes")]
        return int(self._push(keys=keys, args=[lane, floor_seconds, *message_ids]))

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

    # -- taking ---------------------------------------------------------------------------

    def take(self, pace: Pace, now: float, *, paired_at: datetime | None = None, paused: bool = False) -> Decision:
        """The next message to send now, or how long to wait and why (counted as a pace wait)."""
        decision = self._take_decide(pace, now, paired_at=paired_at, paused=paused)
        pace_decided(self.session_id, decision.reason, decision.wait)
        return decision

    def _take_decide(self, pace: Pace, now: float, *, paired_at: datetime | None, paused: bool) -> Decision:
        verdict = self._decide("take", pace, now, paired_at=paired_at, paused=paused)
        if verdict[0] == "send":
            return Decision(message_id=verdict[2], lane=verdict[1])
        if verdict[0] == "empty":
            return Decision(wait=None if len(verdict) == 1 else float(verdict[1]) - now, reason="empty")
        if verdict[0] == "paused":
            return Decision(wait=None, reason="paused")
        when, why = self._blocked(verdict, pace, now, paired_at)
        return Decision(wait=when - now, reason=why)

    def blocked_until(self, pace: Pace, now: float, *, paired_at: datetime | None = None) -> tuple[float, str] | None:
        """(when, why) the pace next allows a send, if not now."""
        verdict = self._decide("check", pace, now, paired_at=paired_at, paused=False)
        return None if verdict[0] == "free" else self._blocked(verdict, pace, now, paired_at)

    def _decide(self, mode: str, pace: Pace, now: float, *, paired_at: datetime | None, paused: bool) -> list[str]:
        quiet = pace.quiet_until(now)
        keys = [
            *(self.key(name) for name in ("lanes", "laneset", "ids", "later", "held", "next")),
            *self._count_keys(),
            self.key("floors"),
        ]
        args = [
            mode,
            repr(now),
            self.key("lane:"),
            int(paused),
            "" if quiet is None else repr(quiet),
            pace.per_minute,
            pace.day_cap(paired_at, now),
            *_since_args(pace.day_start(now)),
        ]
        return [_text(part) for part in self._take(keys=keys, args=args)]

    @staticmethod
    def _blocked(verdict: list[str], pace: Pace, now: float, paired_at: datetime | None) -> tuple[float, str]:
        why = verdict[0]
        if why == "quiet_hours" or why == "gap":
            return float(verdict[1]), why
        if why == "per_minute":
            return float(verdict[1]) + 60, why
        cap = pace.day_cap(paired_at, now)
        return pace.next_day_start(now), "warmup" if cap < pace.per_day else "per_day"

    def sent(
        self, message_id: str, lane: str | None, pace: Pace, now: float, *, rng: random.Random | None = None
    ) -> float:
        """Count a send; returns when the next may go: after the longer of the pace's gap and
        the lane's floor, plus jitter."""
        jitter = (rng or random).uniform(0, pace.jitter_seconds) if pace.jitter_seconds else 0.0
        args = [
            repr(now),
            lane or "",
            repr(float(pace.min_gap_seconds)),
            repr(jitter),
            f"{now:.6f}:{message_id}",
            int(now // QUARTER_SECONDS),
            *_since_args(pace.day_start(now)),
            repr(now - RECENT_KEEP_SECONDS),
        ]
        keys = [self.key("floors"), self.key("next"), *self._count_keys()]
        return float(self._sent(keys=keys, args=args))

    def _count_keys(self) -> list[str]:
        return [self.key("recent"), self.key("quarters"), self.key("today"), self.key("sent")]

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
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.scard(self.key("ids"))
            pipe.zcard(self.key("later"))
            return sum(pipe.execute())

    def lanes(self) -> int:
        return self.redis.llen(self.key("lanes"))

    def sent_today(self, pace: Pace, now: float) -> int:
        """Sends since midnight in the pace's time zone."""
        return int(self._count(keys=self._count_keys(), args=["today", *_since_args(pace.day_start(now))]))

    def sent_since(self, since: float) -> int:
        """Sends at or after `since`: exact for a time in the last two minutes or on a quarter
        of an hour (any midnight); older sends are counted by the quarter of an hour."""
        return int(self._count(keys=self._count_keys(), args=["since", *_since_args(since)]))

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
        return self.outcome_many([code], window)[-1]

    def cold_room(self, limit: int, spent: int = 1) -> int | None:
        """Spend `spent` of the room left under the cold-message `limit` (see
        `cold_room_set`): the room left now, or None when it is not known."""
        room = self._spend(keys=[self.key(f"cold:{limit}")], args=[spent])
        return None if room is None else int(room)

    def cold_room_set(self, limit: int, room: int) -> None:
        """How many more messages may go to people who never wrote before more than `limit`
        went to them in a day, as last counted."""
        self.redis.set(self.key(f"cold:{limit}"), room, ex=86400)

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
        names = ("ids", "floors", "laneset", "lanes", "later", "held", "next", "outcomes")
        self.redis.delete(*(self.key(name) for name in names), *self._count_keys())
        for key in [*self.redis.scan_iter(match=self.key("lane:*")), *self.redis.scan_iter(match=self.key("cold:*"))]:
            self.redis.delete(key)


def send_queues_holding(connection: Redis, messages: list[tuple[str, str]], chunk: int = 1000) -> set[str]:
    """Which of these messages ((session id, message id) pairs) their session's queue holds:
    on a lane, or held for later. One round trip per `chunk` of them."""
    held: set[str] = set()
    for start in range(0, len(messages), chunk):
        part = messages[start : start + chunk]
        with connection.pipeline(transaction=False) as pipe:
            for session_id, message_id in part:
                pipe.sismember(KEY.format(session_id, "ids"), message_id)
                pipe.zscore(KEY.format(session_id, "later"), message_id)
            answers = pipe.execute()
        for index, (_, message_id) in enumerate(part):
            if answers[2 * index] or answers[2 * index + 1] is not None:
                held.add(message_id)
    return held


def send_queue_depths(connection: Redis, session_ids: list[str]) -> dict[str, int]:
    """Each session's messages waiting (SendQueue.depth) in one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for session_id in session_ids:
            pipe.scard(KEY.format(session_id, "ids"))
            pipe.zcard(KEY.format(session_id, "later"))
        answers = pipe.execute()
    return {session_id: answers[2 * index] + answers[2 * index + 1] for index, session_id in enumerate(session_ids)}


def _since_args(since: float) -> list:
    """A time to count from, as the counting scripts take it: itself, its first whole quarter
    of an hour and that quarter's start."""
    first = -(-since // QUARTER_SECONDS)
    return [repr(since), int(first), int(first) * QUARTER_SECONDS]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def utc_timestamp(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
