"""The relay: what the database holds reaches Redis, even when handing it over failed.

The database is the record of every message (a transactional outbox): a send is stored,
then handed to its session's send queue in Redis. When Redis cannot take it then (down,
restarting), the send is accepted all the same, and the relay hands it over once Redis is
back. It runs every RELAY_INTERVAL_SECONDS in the worker role (`flask worker`) and in the
embedded runtime, one process at a time (a lease in Redis), and each pass:

- looks at the messages handed over since its last pass (queued with a dispatch time, or
  scheduled), once each, when they are RELAY_GRACE_SECONDS old: one that is neither on its
  session's queue nor held in it for later, and still so at the next pass (a message the
  engine host has just taken is briefly in neither), is lined up again and its engine host
  nudged. A message the engine host has taken (an attempt spent) counts as being sent for
  RELAY_IN_FLIGHT_SECONDS. A relay starts with every such message (a sweep), then follows
  the dispatch time, so a backlog the pace holds back costs nothing pass after pass; it
  sweeps them all again every SWEEP_SECONDS, and once an outage it lived through is over
  (a message the engine host took from Redis but could not claim while the database was
  away is in neither place, long after the cursor passed it);
- notices that Redis lost its data (a counter it keeps there starts again, or goes back,
  as after a restart from an older snapshot) and then lines up every queued and scheduled
  message at once, and resumes what only Redis remembered: bulk dispatching, webhook
  deliveries waiting for a retry, the periodic statistics;
- starts again the bulk batches whose dispatching stopped (their first job never reached
  Redis, or an outage broke their chain of chunks).

Nothing is sent twice: lining up a message already queued changes nothing, the engine host
sends only what the database still calls queued (claiming it in one commit), and engines
recognise a message they already sent by its WhatsApp id.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby

from flask import Flask, current_app
from sqlalchemy import or_, select

from extensions import db, queues
from models import Message, MessageStatus, WaSession
from models.base import as_utc
from services.governor.queue import send_queues_holding
from services.hosts.calls import messages_enqueue
from services.messaging.bulk import batches_stalled, bulk_resume
from services.messaging.stats import stats_schedule_periodic
from services.platform.outages import is_outage, outage_rollback
from services.platform.retention import retention_schedule_periodic
from services.webhooks.delivery import webhook_deliveries_resume

log = logging.getLogger(__name__)
LEASE_KEY = "wagate:relay:lease"
# Counts the relay's passes; it starting again from 1 (or going back) means Redis lost its data.
EPOCH_KEY = "wagate:relay:epoch"
# How often the relay looks at every waiting message again, not just the new ones.
SWEEP_SECONDS = 60.0
# A batch with nothing handed over waiting and nothing dispatched for this long has stalled.
BULK_QUIET_SECONDS = 15.0
# Keep the lease (or take it) and say so: 1 kept, 2 taken, 0 another relay holds it.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class RelayPass:
    """What one pass did."""

    leading: bool = False
    data_lost: bool = False
    looked_at: int = 0
    lined_up: list[str] = field(default_factory=list)
    batches_resumed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Seen:
    """A message as the relay found it missing from Redis: if it is still so, unchanged, at
    the next pass, nobody is sending it."""

    status: str
    attempts: int
    updated_at: datetime | None


class Relay:
    """The relay of one process (see the module's docstring); `run` is its thread."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.token = secrets.token_hex(8)
        self.cursor: datetime | None = None  # messages dispatched up to here were looked at
        self.swept_at: datetime | None = None  # when every waiting message was last looked at
        self.epoch: int | None = None  # the pass counter as this relay last saw it
        self.leading = False
        self.missing: dict[str, _Seen] = {}
        self.stalled: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Note where Redis stands (the caller resumes bulk, webhooks and stats itself, as a
        worker does on start), and pass every RELAY_INTERVAL_SECONDS from a thread."""
        with self.app.app_context():
            try:
                self.epoch = int(queues.connection.incr(EPOCH_KEY))
            except Exception as exc:
                if not is_outage(exc):
                    raise
        self._thread = threading.Thread(target=self.run, name="relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.app.app_context():
            try:
                queues.connection.register_script(_RELEASE)(keys=[LEASE_KEY], args=[self.token])
            except Exception as exc:
                if not is_outage(exc):
                    raise

    def run(self) -> None:
        interval = self.app.config["RELAY_INTERVAL_SECONDS"]
        while not self._stopping.wait(interval):
            self.pass_logged()

    def pass_logged(self, now: datetime | None = None) -> RelayPass | None:
        """One pass in an app context of its own, its failure logged (None then)."""
        with self.app.app_context():
            try:
                report = self.pass_once(now)
            except Exception as exc:
                self._note_failure(exc)
                try:
                    outage_rollback()
                except Exception:  # the next pass starts from a fresh session anyway
                    db.session.remove()
                return None
            self._note_failure(None)
            return report

    def _note_failure(self, exc: Exception | None) -> None:
        """Log an outage once when it starts and once when it ends; anything else every time."""
        if exc is None:
            if self._failing is not None:
                log.info("relay running again")
            self._failing = None
        elif is_outage(exc):
            if self._failing is None:
                log.warning("relay waiting for the database or Redis: %s", exc)
            self._failing = "outage"
            self.cursor = None  # what went missing meanwhile is looked for once both are back
        else:
            log.error("relay pass failed", exc_info=exc)

    # -- one pass -------------------------------------------------------------------------

    def pass_once(self, now: datetime | None = None) -> RelayPass:
        """One pass (see the module's docstring); `now` for a test's clock."""
        now = now or datetime.now(UTC)
        config = current_app.config
        report = RelayPass()
        connection = queues.connection
        lease_ms = int(max(3 * config["RELAY_INTERVAL_SECONDS"], 10) * 1000)
        lease = int(connection.register_script(_LEASE)(keys=[LEASE_KEY], args=[self.token, lease_ms]))
        if lease == 0:
            self.leading = False
            return report
        if lease == 2 or not self.leading:  # it did not follow while another relay led
            self.cursor, self.missing, self.stalled = None, {}, set()
        self.leading = report.leading = True
        epoch = int(connection.incr(EPOCH_KEY))
        report.data_lost = self.epoch is not None and epoch <= self.epoch
        self.epoch = epoch
        if report.data_lost:
            log.warning("Redis lost its data: lining up every queued and scheduled message again")
            self.cursor = None
        if self.swept_at is None or (now - self.swept_at).total_seconds() >= SWEEP_SECONDS:
            self.cursor = None
        if self.cursor is None:
            self.swept_at = now
        upto = now - timedelta(seconds=config["RELAY_GRACE_SECONDS"])
        report.looked_at, report.lined_up = self._messages(upto, now, at_once=report.data_lost)
        self.cursor = upto
        if report.data_lost:
            bulk_resume()
            webhook_deliveries_resume()
            stats_schedule_periodic()
            retention_schedule_periodic()
        else:
            report.batches_resumed = self._stalled_batches(now)
        if report.lined_up or report.batches_resumed:
            log.info(
                "relay: %d message(s) lined up again, %d batch(es) resumed",
                len(report.lined_up),
                len(report.batches_resumed),
            )
        return report

    def _messages(self, upto: datetime, now: datetime, *, at_once: bool) -> tuple[int, list[str]]:
        """Look at the messages dispatched since the cursor (and those missing last time); line
        up those Redis does not hold: at once, or when still missing and unchanged."""
        waiting = or_(
            (Message.status == MessageStatus.QUEUED) & Message.dispatched_at.is_not(None),
            Message.status == MessageStatus.SCHEDULED,
        )
        columns = (Message.id, Message.session_id, Message.status, Message.attempts, Message.updated_at)
        window = Message.dispatched_at <= upto
        if self.cursor is not None:
            window &= Message.dispatched_at > self.cursor
        rows = {row.id: row for row in db.session.execute(select(*columns).where(waiting, window))}
        suspects = [message_id for message_id in self.missing if message_id not in rows]
        if suspects:
            rows |= {
                row.id: row for row in db.session.execute(select(*columns).where(waiting, Message.id.in_(suspects)))
            }
        db.session.rollback()  # no transaction held while Redis is asked
        held = send_queues_holding(queues.connection, [(row.session_id, row.id) for row in rows.values()])
        in_flight_since = now - timedelta(seconds=current_app.config["RELAY_IN_FLIGHT_SECONDS"])
        missing: dict[str, _Seen] = {}
        due: list[str] = []
        for row in rows.values():
            if row.id in held:
                continue
            seen = _Seen(row.status, row.attempts, row.updated_at)
            in_flight = row.attempts > 0 and as_utc(row.updated_at) > in_flight_since
            if not in_flight and (at_once or self.missing.get(row.id) == seen):
                due.append(row.id)
            else:
                missing[row.id] = seen
        self.missing = missing
        if due:
            self._line_up(due)
        return len(rows), due

    def _line_up(self, message_ids: list[str]) -> None:
        """Line these messages up again, in their order, and nudge each session's engine host."""
        messages = db.session.scalars(
            select(Message)
            .where(Message.id.in_(message_ids))
            .order_by(Message.session_id, Message.created_at, Message.position)
        ).all()
        sessions = {
            session.id: session
            for session in db.session.scalars(
                select(WaSession).where(WaSession.id.in_({message.session_id for message in messages}))
            )
        }
        db.session.expunge_all()  # kept as loaded: lining them up reads no row again
        db.session.rollback()
        for session_id, run in groupby(messages, key=lambda message: message.session_id):
            messages_enqueue(sessions[session_id], list(run))

    def _stalled_batches(self, now: datetime) -> list[str]:
        """Dispatch again the batches seen stalled at this pass and the last."""
        stalled = set(batches_stalled(now, quiet_seconds=BULK_QUIET_SECONDS))
        confirmed = sorted(stalled & self.stalled)
        self.stalled = stalled - set(confirmed)
        if confirmed:
            log.warning("bulk batch(es) %s stopped dispatching: resumed", ", ".join(confirmed))
            bulk_resume(confirmed)
        return confirmed
