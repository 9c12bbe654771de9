"""What an engine host watches in the sessions it holds, at each heartbeat: sends stuck past
their deadline (the delivery watchdog, services/messaging/watchdog.py) and sessions gone deaf.

A deaf session looks connected but hears nothing: no inbound message, no receipt, no
presence (a connection half-open, a stream WhatsApp stopped feeding). The host notes what
each session hears (its engine's events pass `heard`): when it last heard anything, how
often contacts usually write to it, and sends acknowledged since it last heard anything.
Every DEAF_PROBE_SECONDS, or at once when its traffic says something is overdue (sends
acknowledged DEAF_RECEIPT_SECONDS ago and no receipt, nor anything else, since; or, for a
session contacts write to often, QUIET_GAPS of its usual gaps without a message), it runs
the engine's liveness check (`Engine.probe`: a keep-alive answered). A session whose check
fails is deaf: counted (`wa_sessions.deaf_count`), reported (`session.degraded`) and
reconnected at once (`Engine.reconnect`, under the host's lease: no DISCONNECTED, so it
stays the host's and wanted online); the first check it passes afterwards reports
`session.recovered`. A session not connected is not checked: it knows.
So a session that goes deaf is found within one probe interval and recovered by the next.

EngineHost hooks in at three places: `heard` on every engine event (EngineHost._engine_event),
`send_noted` after each attempt of a send (EngineHost.message_send), `beat` at the end of
each heartbeat (EngineHost._beat).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from engines import EngineError, EngineEvent, EngineEventKind
from extensions import db
from models.base import as_utc, utcnow
from services.events.bus import event_publish
from services.events.catalog import SessionDegraded, SessionRecovered
from services.hosts.leases import lease_lock
from services.messaging.watchdog import NO_SERVER_ACK, Stall, messages_stalled_find, messages_stalled_mark

log = logging.getLogger(__name__)
# What a session hears from WhatsApp that proves its connection carries traffic.
HEARD_KINDS = frozenset({EngineEventKind.MESSAGE, EngineEventKind.RECEIPT, EngineEventKind.PRESENCE})
# How many messages' last send error the host keeps for their stall reports.
SEND_ERRORS_KEPT = 10_000
# A session that usually hears a contact every few seconds is looked at once it has been
# quiet for this many of its usual gaps (and DEAF_RECEIPT_SECONDS), after this many messages.
QUIET_GAPS = 10
QUIET_SAMPLE = 5
# The weight of the newest gap in a session's usual gap between inbound messages.
GAP_WEIGHT = 0.2


@dataclass
class _Traffic:
    """What a held session heard, and what that predicts (times are time.monotonic())."""

    probed_at: float
    heard_at: float | None = None  # anything from WhatsApp: inbound, receipt, presence
    inbound_at: float | None = None
    inbound_gap: float | None = None  # its usual gap between inbound messages
    inbound_count: int = 0
    owed_since: float | None = None  # the first send acknowledged since it last heard anything

    def heard(self, kind: EngineEventKind, now: float) -> None:
        if kind == EngineEventKind.MESSAGE:
            if self.inbound_at is not None:
                gap = now - self.inbound_at
                self.inbound_gap = (
                    gap if self.inbound_gap is None else (1 - GAP_WEIGHT) * self.inbound_gap + GAP_WEIGHT * gap
                )
            self.inbound_at = now
            self.inbound_count += 1
        self.heard_at = now
        self.owed_since = None

    def overdue(self, now: float, owed_after: float) -> str | None:
        """Why its traffic says it should have heard something by now (None: it need not)."""
        if self.owed_since is not None and now - max(self.owed_since, self.probed_at) >= owed_after:
            return f"no receipt for sends acknowledged {now - self.owed_since:.0f} s ago"
        if self.inbound_count >= QUIET_SAMPLE and self.inbound_gap is not None:
            quiet = now - max(self.inbound_at, self.probed_at)
            if quiet >= max(owed_after, QUIET_GAPS * self.inbound_gap):
                return f"no message for {now - self.inbound_at:.0f} s where one came every {self.inbound_gap:.0f} s"
        return None

    def silence(self, now: float) -> str:
        if self.heard_at is None:
            return "nothing heard since it was taken up"
        return f"nothing heard for {now - self.heard_at:.0f} s"


class SessionWatch:
    """The watch of one engine host (roles/engine_host.py: EngineHost, given as `host`)."""

    def __init__(self, host) -> None:
        self.host = host
        self.config = host.app.config
        self._lock = threading.Lock()
        self._traffic: dict[str, _Traffic] = {}
        self._deaf: dict[str, float] = {}  # sessions reconnected for deafness -> since when
        self._errors: OrderedDict[str, str] = OrderedDict()  # message -> WhatsApp's last word on it
        self._stalls_at = 0.0
        self.degraded = 0  # since the start, for the logs
        self.recovered = 0

    # -- hooks ----------------------------------------------------------------------------

    def _of(self, session_id: str, now: float) -> _Traffic:
        """The session's traffic (a session first seen is checked one interval later)."""
        traffic = self._traffic.get(session_id)
        if traffic is None:
            traffic = self._traffic[session_id] = _Traffic(probed_at=now)
        return traffic

    def heard(self, event: EngineEvent) -> None:
        """An engine event (any thread): traffic from WhatsApp, or a session let go of."""
        if event.kind in HEARD_KINDS:
            now = time.monotonic()
            with self._lock:
                self._of(event.session_id, now).heard(event.kind, now)
        elif event.kind == EngineEventKind.DISCONNECTED:
            with self._lock:
                self._traffic.pop(event.session_id, None)

    def send_noted(self, session_id: str, message_id: str, error: EngineError | None) -> None:
        """A send's attempt ended: acknowledged (receipts are owed now), or how it failed."""
        with self._lock:
            if error is None:
                traffic = self._of(session_id, time.monotonic())
                traffic.owed_since = traffic.owed_since or time.monotonic()
                self._errors.pop(message_id, None)
                return
            self._errors[message_id] = f"{error.code}: {error.message}"
            self._errors.move_to_end(message_id)
            while len(self._errors) > SEND_ERRORS_KEPT:
                self._errors.popitem(last=False)

    def beat(self) -> None:
        """At each heartbeat: the delivery watchdog's check when due, then the liveness checks."""
        self.stalls_check()
        self.probe_check()

    # -- the delivery watchdog ------------------------------------------------------------

    def _held(self) -> list[str]:
        held = self.host.leases.copy()  # one step under the GIL: other threads change it
        return [session_id for session_id in held if self.host.lease_of(session_id) is not None]

    def stalls_check(self) -> list[Stall]:
        """Mark and report the held sessions' messages past their deadline; the ones WhatsApp
        never acknowledged queued again once when that cannot send them twice."""
        now = time.monotonic()
        if now < self._stalls_at:
            return []
        self._stalls_at = now + self.config["WATCHDOG_INTERVAL_SECONDS"]
        ack, delivery = self.config["WATCHDOG_ACK_SECONDS"], self.config["WATCHDOG_DELIVERY_SECONDS"]
        stalls = messages_stalled_find(self._held(), utcnow(), ack_seconds=ack, delivery_seconds=delivery)
        if not stalls:
            return []
        with self._lock:
            details = {
                stall.message_id: self._errors[stall.message_id] for stall in stalls if stall.message_id in self._errors
            }
        marked = messages_stalled_mark(stalls, utcnow(), details=details, retry=self._retry)
        log.warning("engine host %s: %d message(s) stalled", self.host.id, len(marked))
        return marked

    def _retry(self, stall: Stall) -> bool:
        """Queue a message WhatsApp never acknowledged again (WATCHDOG_RETRY_ONCE), under its
        WhatsApp id, only when the engine knows whether it went out: it then sends it for the
        first time or answers for the copy WhatsApp has. Never while an attempt is under way
        or unconfirmed (the engine cannot tell): it might arrive twice."""
        if not self.config["WATCHDOG_RETRY_ONCE"] or stall.reason != NO_SERVER_ACK or stall.wa_id is None:
            return False
        if self.host.lease_of(stall.session_id) is None:
            return False
        if self.host.engine.carried(stall.session_id, stall.wa_id) is None:
            return False
        self.host.message_accept(stall.message_id)
        return True

    # -- the deaf-session probe -----------------------------------------------------------

    def probe_check(self) -> list[str]:
        """Check the held sessions that are due; reconnect the deaf ones. Those found deaf."""
        interval = self.config["DEAF_PROBE_SECONDS"]
        if interval <= 0:
            return []
        owed_after = self.config["DEAF_RECEIPT_SECONDS"]
        now = time.monotonic()
        found = []
        for session_id in self._held():
            with self._lock:
                traffic = self._of(session_id, now)
                overdue = traffic.overdue(now, owed_after)
                deaf = session_id in self._deaf
                if not deaf and overdue is None and now - traffic.probed_at < interval:
                    continue
                traffic.probed_at = now
                silence = traffic.silence(now)
            try:
                alive = self.host.engine.probe(session_id)
            except EngineError:  # not connected (it says so itself), or nothing to check with
                continue
            if alive:
                if deaf:
                    self._recovered(session_id)
            elif not deaf or now - self._deaf[session_id] >= interval:  # still deaf: once more
                found.append(session_id)
                reason = f"its keep-alive went unanswered; {silence}" + (f", and {overdue}" if overdue else "")
                self._degraded(session_id, reason, again=deaf)
        return found

    def _degraded(self, session_id: str, reason: str, *, again: bool) -> None:
        """Count it and say so (once per deafness), then reconnect it."""
        lease = self.host.lease_of(session_id)
        session = lease_lock(session_id, self.host.id, lease.generation) if lease is not None else None
        if session is None:
            db.session.rollback()
            return
        if not again:
            session.deaf_count += 1
            session.deaf_at = utcnow()
        db.session.commit()
        if not again:
            self.degraded += 1
            log.warning("session %s is deaf (%s): reconnecting it", session_id, reason)
            event_publish(
                session.user_id,
                SessionDegraded(
                    session_id=session_id, reason=reason, deaf_count=session.deaf_count, timestamp=session.deaf_at
                ),
            )
        with self._lock:
            self._deaf[session_id] = time.monotonic()
            self._of(session_id, time.monotonic()).owed_since = None
        try:
            self.host.engine.reconnect(session_id)
        except EngineError as exc:
            log.warning("session %s: could not reconnect it: %s", session_id, exc.message)

    def _recovered(self, session_id: str) -> None:
        lease = self.host.lease_of(session_id)
        session = lease_lock(session_id, self.host.id, lease.generation) if lease is not None else None
        with self._lock:
            self._deaf.pop(session_id, None)
        if session is None:
            db.session.rollback()
            return
        now = utcnow()
        since = as_utc(session.deaf_at) if session.deaf_at is not None else now
        session.deaf_at = None
        db.session.commit()
        self.recovered += 1
        log.info("session %s hears again after its reconnection", session_id)
        event_publish(
            session.user_id,
            SessionRecovered(session_id=session_id, deaf_seconds=(now - since).total_seconds(), timestamp=now),
        )
