"""The engine host: owns the live WhatsApp sessions of one process.

It consumes its own RQ queue and the shared engine queue without forking, restores the
sessions that should be online when it starts, turns engine events into stored state and
Socket.IO pushes (on one event thread, so engine threads only enqueue), and keeps a
heartbeat in Redis for routing and /healthz.

It keeps running while PostgreSQL or Redis restarts: each of its loops (jobs, heartbeat,
events, send lines) waits an outage out with backoff. What WhatsApp reports meanwhile goes
to the host's event spool (roles/event_spool.py) and is applied, in order, once the store
answers; send lines hold their messages until then, and rebuild their queues from the
database, as a restarted host does.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import Flask
from rq.serializers import JSONSerializer
from sqlalchemy import or_, select, text
from sqlalchemy.orm.attributes import set_committed_value

from engines import Engine, EngineError, EngineEvent, EngineEventKind, EngineSettings, engine_create
from engines.outgoing import Outgoing
from extensions import db, queues
from jobs import engine as engine_jobs
from jobs.queues import ENGINE_QUEUE, engine_host_queue_name
from jobs.worker import ThreadScheduler, ThreadWorker
from models import Message, MessageStatus, SessionStatus, WaSession
from models.base import utcnow
from roles.engine_events import (
    LEASE_STAMP,
    STATE_KINDS,
    SendsSettled,
    engine_event_apply,
    engine_settle_apply,
    engine_states_apply,
)
from roles.event_spool import EventSpool, spool_path
from roles.send_lines import SessionSenders
from roles.session_watch import SessionWatch
from services.governor.pace import send_queue, session_pace
from services.governor.queue import API_LANE, Decision, Pace, SendQueue
from services.hosts.calls import messages_line_up, sends_waiting_clear
from services.hosts.leases import (
    LEASE_BATCH,
    host_with_most_room,
    hosts_gone,
    lease_acquire,
    lease_lock,
    lease_release,
    leases_renew,
    leases_take_own,
    sessions_named,
    sessions_orphaned,
    sessions_wanted_count,
)
from services.hosts.routing import (
    engine_queue_for,
    host_heartbeat,
    host_holds,
    host_is_alive,
    host_jobs_take_over,
    host_retire,
    hosts_alive,
    session_overload_mark,
)
from services.messaging.lifecycle import SendSettled
from services.messaging.outgoing import media_files, media_read, outgoing_load
from services.messaging.scheduling import scheduled_change
from services.platform.faults import fault_source
from services.platform.metrics import lease_moved
from services.platform.shared_state import shared_state
from services.platform.sim_connections import RedisConnections
from services.platform.store_outage import StoreOutage, store_unreachable

log = logging.getLogger(__name__)
# Queued on the event thread to adopt sessions whose host died, between engine events.
_ADOPT_ORPHANS = object()
# What the event thread finds when no event is waiting (None is the order to stop).
_NONE_WAITING = object()
# The most receipts and send lines' outcomes the event thread writes in one transaction.
RECEIPT_GROUP_MAX = 200
# How long a send line waits for its outcomes to be written before it goes on anyway.
SETTLE_WAIT_SECONDS = 10.0
# How often a send line looks again at a session that is not connected.
SESSION_WAIT_SECONDS = 2.0
# When sending a message failed unexpectedly (a bug, not WhatsApp): it is tried again this much later.
BROKEN_SEND_RETRY_SECONDS = 5.0
# A starting host whose spool holds events waits this long for them to be applied before it
# takes its sessions up (its heartbeat thread does it later otherwise).
SPOOL_START_WAIT_SECONDS = 10.0
# How soon the heartbeat thread looks again while the host's sessions wait to be taken up.
RESTORE_RETRY_SECONDS = 0.5
# How many of its sessions a restarting host takes up at once.
RESTORE_THREADS = 8
# Set (without expiry) once a host has lined up its sessions' sends: gone after Redis lost its
# data, which tells the host to line them up again from the database.
LINED_UP_KEY = "wagate:engine-host:{}:lined-up"
# "typing…" before a message when the session's pace asks for it: this long, by its length.
TYPING_BASE_SECONDS = 1.0
TYPING_SECONDS_PER_CHAR = 0.03
TYPING_MAX_SECONDS = 8.0


# A send step takes every due message of its session, up to this many or for this long, and
# writes their outcomes together.
SEND_GROUP_MAX = 50
SEND_GROUP_SECONDS = 0.05


@dataclass(frozen=True)
class _Send:
    """What sending one claimed message needs, read before its attempt is committed."""

    message_id: str
    session_id: str
    phone: str
    wa_id: str | None
    attempts: int
    outgoing: Outgoing
    length: int  # of its text, for the typing shown before it
    lane: str | None
    floor: float  # the least gap after it (its batch's delay), in seconds

    @classmethod
    def of(cls, message: Message, decision: Decision) -> _Send:
        return cls(
            message_id=message.id,
            session_id=message.session_id,
            phone=message.phone,
            wa_id=message.wa_id,
            attempts=message.attempts,
            outgoing=outgoing_load(message),
            length=len(message.body or ""),
            lane=decision.lane,
            floor=message.min_gap_ms / 1000,
        )

    @property
    def place(self) -> dict:
        """Where it goes back in its queue (SendQueue.later's keywords)."""
        return {"lane": self.lane or API_LANE, "floor_seconds": self.floor}


@dataclass(frozen=True)
class SendOutcome:
    """How one send ended: sent (`at`), failed (`error_code`, `error`, `at`), or to be tried
    again in `retry_in` seconds."""

    at: datetime | None = None
    error_code: str | None = None
    error: str | None = None
    retry_in: float | None = None

    @property
    def settles(self) -> bool:
        return self.at is not None


# The outcome of a message whose group stopped before its turn: it goes back, its attempt given back.
UNTRIED = SendOutcome()
# A lease counts as held for this share of its term after the renewal that began it: the
# database's term starts later than this process's clock, and the rest is a margin.
LEASE_TRUST = 0.9
# After moving sessions to even the load, a host waits this many heartbeats before it looks
# again, so that the others' heartbeats count what they took.
REBALANCE_PAUSE_BEATS = 2


@dataclass
class _Lease:
    """A session this host holds: the lease's generation (its fencing token), and until when
    (time.monotonic()) this host may act for the session without renewing it."""

    generation: int
    valid_until: float


class EngineHost:
    def __init__(self, app: Flask, host_id: str | None = None) -> None:
        self.app = app
        self.id = host_id or app.config["ENGINE_HOST_ID"] or socket.gethostname()
        self.events: queue.Queue[EngineEvent | None] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        connection = app.extensions["wagate.redis"]
        settings = EngineSettings(
            data_dir=Path(app.config["DATA_DIR"]) / "engines",
            public_url=app.config["PUBLIC_URL"],
            qr_refresh_seconds=app.config["QR_REFRESH_SECONDS"],
            qr_max_refreshes=app.config["QR_MAX_REFRESHES"],
            timeout_seconds=app.config["SIMULATOR_TIMEOUT_SECONDS"],
            receipt_seconds=app.config["SIMULATOR_RECEIPT_SECONDS"],
            host_id=self.id,
        )
        options = {}
        if app.config["WA_ENGINE"] == "simulator":
            options["faults"] = fault_source(connection)
            options["connections"] = RedisConnections(connection)
        elif app.config["WA_ENGINE"] == "neonize":
            options = neonize_options(app.config)
        # What another host needs to take a session over (devices, owed receipts, sent ledger).
        options["state"] = shared_state(app, "engines")
        self.engine: Engine = engine_create(app.config["WA_ENGINE"], self._engine_event, settings, **options)
        host_queues = [queues_for_host(app, self.id), queues_for_host(app, None)]
        self.worker = ThreadWorker(
            host_queues,
            connection=queues.worker_connection(app),
            serializer=JSONSerializer,
            name=f"engine-host:{self.id}:{threading.get_native_id()}",
            poll_seconds=app.config["WORKER_POLL_SECONDS"],
        )
        # Runs the jobs retried after a store outage (jobs/context.py) when they fall due.
        self.scheduler = ThreadScheduler(host_queues, connection=connection, serializer=JSONSerializer)
        self.senders = SessionSenders(self._step_in_context)
        self.spool = EventSpool(spool_path(app.config["DATA_DIR"], self.id))
        self.spooled = 0  # events spooled, and applied from the spool, since the start
        self.spool_applied = 0
        self._spool_retry_at = 0.0
        self._events_outage = StoreOutage(f"engine host {self.id}: events", log)
        self._beat_outage = StoreOutage(f"engine host {self.id}: heartbeat", log)
        self._restored = False
        # Sessions whose send step met an outage: their queue is rebuilt from the database first.
        self._relining: set[str] = set()
        # The sessions this host holds, under their leases (services/hosts/leases.py).
        self.leases: dict[str, _Lease] = {}
        self._leases_lock = threading.Lock()
        self._leases_outage = StoreOutage(f"engine host {self.id}: leases", log)
        # One send step of a session at a time; a handover waits for the step in flight.
        self._step_locks: dict[str, threading.Lock] = {}
        self._restore_lock = threading.Lock()
        self.draining = False
        # The sessions the engine reported connected, and not gone since (see send_step).
        self._connected: set[str] = set()
        self._rebalance_at = 0.0
        # Stalled sends and deaf sessions, looked at each heartbeat (roles/session_watch.py).
        self.watch = SessionWatch(self)
        app.extensions["wagate.engine_host"] = self

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event, scheduler and heartbeat threads and restore sessions (once the
        spool left by an earlier run is applied); jobs need `work()`. With a store out of
        reach, the heartbeat thread restores them once it answers."""
        self._spawn(self._process_events, "engine-events")  # applies the spool first
        self._spawn(self.scheduler.work, "engine-scheduler")
        self._spawn(self._leases_forever, "engine-leases")  # renews what restore takes, as it takes it
        deadline = time.monotonic() + SPOOL_START_WAIT_SECONDS
        while self.spool.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            with self.app.app_context():
                self._heartbeat()
        except Exception as exc:
            if not store_unreachable(exc):
                raise
            self._beat_outage.failed(exc)
        # The heartbeat goes on while the sessions are taken up: other hosts see this one alive.
        self._spawn(self._heartbeat_forever, "engine-heartbeat")
        try:
            with self.app.app_context():
                self._restore_once()
        except Exception as exc:
            if not store_unreachable(exc):
                raise
            self._beat_outage.failed(exc)  # the heartbeat thread takes them up once the stores answer

    def work(self) -> None:
        """Consume engine jobs in the calling thread until `stop()`."""
        with self.app.app_context():
            self.worker.work(logging_level="WARNING")

    def stop(self, drain: bool = True) -> None:
        """Stop: first (with `drain`) hand the sessions held over to the other living hosts,
        for at most DRAIN_SECONDS; what is left is taken up again by this host's next run, or
        by another host once its lease ran out."""
        if drain:
            try:
                with self.app.app_context():
                    self.drain(self.app.config["DRAIN_SECONDS"])
            except Exception as exc:
                if not store_unreachable(exc):
                    raise
                log.warning("engine host %s: could not hand its sessions over (%s)", self.id, exc)
        self._stopping.set()
        self.worker.stop()
        self.scheduler.request_stop()
        self.senders.stop()
        self.engine.shutdown()
        self.events.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        try:
            with self.app.app_context():
                host_retire(self.id)
                if self.draining and not self.leases:  # every session went: so do the jobs for them
                    host_jobs_take_over(self.id, queues.queue(ENGINE_QUEUE))
        except Exception as exc:
            if not store_unreachable(exc):
                raise
            log.warning("engine host %s: not retired (%s); its heartbeat expires on its own", self.id, exc)
        if not any(thread.is_alive() for thread in self._threads):
            self.spool.close()
        self.app.extensions.pop("wagate.engine_host", None)

    def restore(self) -> None:
        """On start: take back, in one statement, the lease of every session that names this
        host (the lease thread renews them from then on, while they are taken up one by one),
        then this host's share of the sessions nobody living holds."""
        started = time.monotonic()
        own = leases_take_own(self.id)
        with self._leases_lock:
            for session_id, generation in own.items():
                self.leases[session_id] = _Lease(generation, started + self._lease_term())
        self._report(list(own), held=True)
        pending = self._sends_pending(list(own))  # one read for all, not one per session

        def take_up(session_id: str) -> None:
            with self.app.app_context():
                self.engine.session_start(session_id)
                self._sends_line_up(session_id, pending.get(session_id, []))

        # Sessions with sends waiting come up first: they are what people are waiting for.
        # Several at a time: each start waits on the stores and the engine, not the processor.
        with ThreadPoolExecutor(max_workers=RESTORE_THREADS, thread_name_prefix=f"restore:{self.id}") as pool:
            list(pool.map(take_up, sorted(own, key=lambda session_id: session_id not in pending)))
        if own:
            log.info("engine host %s took back %d session(s)", self.id, len(own))
        self.adopt_orphans(grace=False)  # a start that found no host alive left them unowned
        queues.connection.set(LINED_UP_KEY.format(self.id), 1)

    def _restore_once(self) -> None:
        """`restore` unless done, or under way in another thread."""
        if self._restored or self.spool.pending or not self._restore_lock.acquire(blocking=False):
            return
        try:
            if not self._restored:
                self.restore()
                self._restored = True
        finally:
            self._restore_lock.release()

    def adopt_orphans(self, grace: bool = True) -> None:
        """Take up to this host's share of the sessions nobody living holds (unowned, or whose
        host died and whose lease ran out): each host takes its share, so they spread by
        capacity. Then the jobs waiting on dead hosts' queues come to this host's queue."""
        alive = self._alive()
        gone = hosts_gone(alive)  # before their sessions are taken: named for them no more after
        room = math.ceil(self._shares(alive).get(self.id, 0)) - len(self.leases)
        if room > 0:
            orphans = sessions_orphaned(alive, room, grace=grace)
            for session_id in orphans:
                self.session_start(session_id, alive)
                if session_id in self.leases:
                    lease_moved("takeover")
            if orphans:
                log.info("engine host %s took up %d session(s) nobody held", self.id, len(orphans))
        self._jobs_take_over(gone)

    def _alive(self) -> dict[str, dict]:
        """The living hosts' heartbeats, this host's among them."""
        alive = hosts_alive()
        capacity = self.app.config["ENGINE_HOST_CAPACITY"]
        alive.setdefault(self.id, {"sessions": len(self.leases), "capacity": capacity, "draining": self.draining})
        return alive

    def _shares(self, alive: dict[str, dict]) -> dict[str, float]:
        """How many sessions each living host that is not draining should hold, by capacity."""
        capacities = {
            host_id: max(1, beat.get("capacity") or 1) for host_id, beat in alive.items() if not beat.get("draining")
        }
        if self.draining:
            capacities.pop(self.id, None)
        if not capacities:
            return {}
        total = sessions_wanted_count()
        room = sum(capacities.values())
        return {host_id: total * capacity / room for host_id, capacity in capacities.items()}

    def rebalance(self) -> int:
        """Even the load: a host holding more than its share hands sessions over to the hosts
        below theirs, each cleanly (`_hand_over`), when its own excess or another host's
        shortfall passes REBALANCE_TOLERANCE of a share. The hosts above their shares split
        the shortfall by their excess, so they do not overfill a host between them; each
        moves at most REBALANCE_BATCH per heartbeat. How many it moved."""
        if self.draining or time.monotonic() < self._rebalance_at:
            return 0
        alive = self._alive()
        shares = self._shares(alive)
        if len(shares) < 2 or self.id not in shares:
            return 0
        mine = shares[self.id]
        excess = len(self.leases) - math.ceil(mine)
        named = sessions_named()
        room = {
            host_id: math.floor(share) - named.get(host_id, 0)
            for host_id, share in shares.items()
            if host_id != self.id
        }
        room = {host_id: free for host_id, free in room.items() if free > 0}
        tolerance = self.app.config["REBALANCE_TOLERANCE"] * mine
        if excess < 1 or not room or (excess <= tolerance and max(room.values()) <= tolerance):
            return 0
        others_excess = sum(
            max(0, named.get(host_id, 0) - math.ceil(share)) for host_id, share in shares.items() if host_id != self.id
        )
        my_part = math.ceil(sum(room.values()) * excess / (excess + others_excess))
        count = min(excess, self.app.config["REBALANCE_BATCH"], my_part)
        with self.senders.lock:
            sending = set(self.senders.lines)
        with self._leases_lock:
            # Idle sessions first: a session moves without a send in flight to wait for.
            candidates = sorted(self.leases, key=lambda session_id: session_id in sending)
        moved = 0
        for session_id in candidates:
            if moved >= count or not room:
                break
            target = max(room, key=room.get)
            if self._hand_over(session_id, target, "rebalance"):
                moved += 1
                room[target] -= 1
                if room[target] <= 0:
                    del room[target]
        if moved:
            log.info("engine host %s handed %d session(s) over to even the load", self.id, moved)
            pause = REBALANCE_PAUSE_BEATS * self.app.config["ENGINE_HOST_HEARTBEAT_SECONDS"]
            self._rebalance_at = time.monotonic() + pause
        return moved

    def drain(self, seconds: float) -> int:
        """Before this host stops: hand every session it holds over to the other living hosts
        (by room, as new sessions are placed), for at most `seconds`. How many went."""
        with self._leases_lock:
            held = list(self.leases)
        if not held:
            return 0
        others = {host_id: beat for host_id, beat in hosts_alive().items() if host_id != self.id}
        if not any(not beat.get("draining") for beat in others.values()):
            return 0
        self.draining = True
        self._heartbeat()  # no new session is placed here from now on
        deadline = time.monotonic() + seconds
        moved = 0
        for session_id in held:
            if time.monotonic() >= deadline:
                break
            target = host_with_most_room(others)
            if target is None:
                break
            moved += self._hand_over(session_id, target, "drain")
        log.info("engine host %s handed %d of %d session(s) over before stopping", self.id, moved, len(held))
        return moved

    def _hand_over(self, session_id: str, to_host: str, reason: str) -> bool:
        """Move one session to `to_host`, with no moment in which both hosts may send for it:
        this host lets go of the lease here first (its send line stops), waits for the send
        step in flight, stops the session, names `to_host` as the next owner in the database,
        and only then asks it to start the session. Whether it went."""
        with self._leases_lock:
            lease = self.leases.pop(session_id, None)
        if lease is None:
            return False
        self._report([session_id], held=False)
        with self._step_lock(session_id):  # the step in flight ends, its outcomes written
            pass
        self.engine.session_stop(session_id, "handed over to another engine host")
        if not lease_release(session_id, self.id, lease.generation, to_host=to_host):
            return False
        queues.queue(engine_host_queue_name(to_host)).enqueue(engine_jobs.engine_session_start, args=(session_id,))
        lease_moved(reason)
        return True

    def _jobs_take_over(self, dead_hosts: list[str]) -> None:
        """Once their sessions are ours: the jobs waiting on dead hosts' queues go to ours."""
        own_queue = queues.queue(engine_host_queue_name(self.id))
        for dead_host in dead_hosts:
            host_jobs_take_over(dead_host, own_queue)

    # -- what engine jobs call ------------------------------------------------------------

    def session_start(self, session_id: str, alive: dict[str, dict] | None = None) -> None:
        """Start the session here under a new lease, unless another host holds it (a living
        owner gets the job instead)."""
        if self._forwarded(session_id, engine_jobs.engine_session_start, session_id):
            return
        started = time.monotonic()
        generation = lease_acquire(session_id, self.id, alive if alive is not None else hosts_alive())
        if generation is None:  # not wanted online, or another host took it meanwhile
            self._forwarded(session_id, engine_jobs.engine_session_start, session_id)
            return
        with self._leases_lock:
            self.leases[session_id] = _Lease(generation, started + self._lease_term())
        self._report([session_id], held=True)
        self._session_up(session_id)

    def _session_up(self, session_id: str) -> None:
        """The engine connects a session whose lease this host took; its sends line up again."""
        self.engine.session_start(session_id)
        self._reload_sends(session_id)

    def _forwarded(self, session_id: str, job: Callable, *args: object) -> bool:
        """Whether another living host owns the session, the job sent on to it if so."""
        if session_id in self.leases:
            return False
        owner = db.session.scalar(select(WaSession.engine_host).where(WaSession.id == session_id))
        db.session.rollback()
        if owner in (None, self.id) or not host_is_alive(owner):
            return False
        engine_queue_for(owner).enqueue(job, args=args)
        return True

    # -- leases ---------------------------------------------------------------------------

    def _lease_term(self) -> float:
        return self.app.config["SESSION_LEASE_SECONDS"] * LEASE_TRUST

    def lease_of(self, session_id: str) -> _Lease | None:
        """The session's lease, while this host may act on it (held and not run out)."""
        lease = self.leases.get(session_id)
        return lease if lease is not None and lease.valid_until > time.monotonic() else None

    def _engine_event(self, event: EngineEvent) -> None:
        """What the engine reports, stamped with the generation of the lease held as it came."""
        lease = self.leases.get(event.session_id)
        event.data[LEASE_STAMP] = lease.generation if lease is not None else None
        if event.kind == EngineEventKind.CONNECTED:
            self._connected.add(event.session_id)
        elif event.kind in STATE_KINDS:
            self._connected.discard(event.session_id)
        self.watch.heard(event)
        self.events.put(event)

    def _leases_forever(self) -> None:
        while not self._stopping.wait(self.app.config["SESSION_LEASE_SECONDS"] / 3):
            try:
                with self.app.app_context():
                    self.leases_renew()
            except Exception as exc:
                if store_unreachable(exc):  # the leases run out here as they do in the database
                    self._leases_outage.failed(exc)
                else:
                    log.exception("engine host %s: renewing leases failed", self.id)
                continue
            self._leases_outage.recovered()

    def leases_renew(self) -> None:
        """Renew every lease held; a session whose lease another host took (or this one gave
        up) is stopped here at once."""
        with self._leases_lock:
            held = {session_id: lease.generation for session_id, lease in self.leases.items()}
        if not held:
            return
        started = time.monotonic()
        renewed = leases_renew(self.id, held)
        lost = []
        with self._leases_lock:
            for session_id, generation in held.items():
                lease = self.leases.get(session_id)
                if lease is None or lease.generation != generation:
                    continue  # given up, or taken again, meanwhile
                if session_id in renewed:
                    lease.valid_until = started + self._lease_term()
                else:
                    del self.leases[session_id]
                    lost.append(session_id)
        self._report(lost, held=False)
        for session_id in lost:
            lease_moved("lost")
            log.warning("engine host %s: lost the lease of session %s; stopping it here", self.id, session_id)
            self.engine.session_stop(session_id, "another engine host holds the session")

    def _lease_forget(self, session_id: str, generation: int | None) -> None:
        """The engine let go of the session (its DISCONNECTED event, applied): no lease to keep."""
        with self._leases_lock:
            lease = self.leases.get(session_id)
            if lease is None or lease.generation != generation:
                return
            del self.leases[session_id]
        self._report([session_id], held=False)

    def _report(self, session_ids: list[str], *, held: bool) -> None:
        """Tell the others (and the hosts page) which sessions this host took or let go of."""
        try:
            host_holds(self.id, session_ids, held=held)
        except Exception as exc:
            if not store_unreachable(exc):
                raise
            log.warning("engine host %s: could not report %d session(s) (%s)", self.id, len(session_ids), exc)

    def _step_lock(self, session_id: str) -> threading.Lock:
        with self._leases_lock:
            return self._step_locks.setdefault(session_id, threading.Lock())

    def session_stop(self, session_id: str, reason: str) -> None:
        self.engine.session_stop(session_id, reason)

    def session_logout(self, session_id: str, reason: str) -> None:
        self.engine.session_logout(session_id, reason)

    def session_pair(self, session_id: str, token: str, phone: str | None) -> dict:
        return self._simulate("pair", session_id, token, phone)

    def session_pair_code(self, session_id: str, phone: str) -> dict:
        """Ask for a code that links the session by phone number instead of a QR scan."""
        return _answer(lambda: self.engine.pair_code(session_id, phone))

    def simulate_address_book(self, session_id: str, contacts: list[dict]) -> dict:
        return self._simulate("sync_contacts", session_id, contacts)

    def simulate_presence(self, session_id: str, sender: str, state: str, chat: str | None) -> dict:
        return self._simulate("contact_presence", session_id, sender, state, chat)

    def simulate_vote(self, session_id: str, sender: str, poll_wa_id: str, options: list[str]) -> dict:
        return self._simulate("vote", session_id, sender, poll_wa_id, options)

    # The engine calls a request may ask for by name and wait on.
    ENGINE_CALLS = (
        "groups_list",
        "group_create",
        "group_info",
        "group_participants",
        "group_invite_link",
        "group_leave",
        "presence_send",
        "presence_subscribe",
        "history_request",
    )

    def engine_call(self, session_id: str, action: str, args: list, options: dict) -> dict:
        """One of the ENGINE_CALLS, answered for a waiting request."""
        if action not in self.ENGINE_CALLS:
            return {"error": "UNKNOWN_ACTION", "message": f"No engine call {action}", "transient": False}
        return _answer(lambda: getattr(self.engine, action)(session_id, *args, **options))

    def numbers_check(self, session_id: str, phones: list[str]) -> dict:
        """Which numbers are on WhatsApp, with their WhatsApp ids."""
        return _answer(lambda: self.engine.check_numbers(session_id, phones))

    def _simulate(self, action: str, session_id: str, *args) -> dict:
        """Play the simulated phone's or contact's part; only the simulator engine has one."""
        act = getattr(self.engine, action, None)
        if act is None:
            log.warning("engine %s cannot simulate %s", self.engine.name, action)
            return {"error": "SIMULATOR_DISABLED", "message": "Only the simulator engine simulates", "transient": False}
        answer = _answer(lambda: act(session_id, *args))
        if "error" in answer:
            log.warning("simulated %s for session %s refused: %s", action, session_id, answer["message"])
        return answer

    def message_accept(self, message_id: str) -> None:
        """Put a queued (or scheduled) message in its session's send queue (a job handed
        over before hand-offs went straight into the queue)."""
        message = db.session.get(Message, message_id)
        if message is not None and message.status in (MessageStatus.QUEUED, MessageStatus.SCHEDULED):
            messages_line_up(send_queue(message.session_id), [message])
            self.queue_nudge(message.session_id)

    def queue_nudge(self, session_id: str) -> None:
        """The session's queue, pace or pause changed: its line looks again now (on the host
        that holds it: one that took it over gets the nudge from here)."""
        if self._forwarded(session_id, engine_jobs.engine_queue_nudge, session_id):
            return
        sends_waiting_clear(session_id)
        if session_id in self.leases:
            self.senders.nudge(session_id)

    def _reload_sends(self, session_id: str) -> None:
        """Queue again what was handed over but not sent (after a restart or a takeover):
        the database is the record, the Redis queue is rebuilt from it (nothing twice)."""
        self._sends_line_up(session_id, self._sends_pending([session_id]).get(session_id, []))

    def _sends_line_up(self, session_id: str, pending: list[Message]) -> None:
        messages_line_up(send_queue(session_id), pending)
        if pending:
            self.senders.nudge(session_id)

    @staticmethod
    def _sends_pending(session_ids: list[str]) -> dict[str, list[Message]]:
        """The messages handed over but not sent yet of these sessions, in their order."""
        pending: dict[str, list[Message]] = {}
        for start in range(0, len(session_ids), LEASE_BATCH):
            messages = db.session.scalars(
                select(Message)
                .where(
                    Message.session_id.in_(session_ids[start : start + LEASE_BATCH]),
                    or_(
                        (Message.status == MessageStatus.QUEUED) & Message.dispatched_at.is_not(None),
                        Message.status == MessageStatus.SCHEDULED,
                    ),
                )
                .order_by(Message.created_at, Message.position)
            )
            for message in messages:
                pending.setdefault(message.session_id, []).append(message)
        return pending

    def _sends_reload_all(self) -> None:
        """Redis lost its data: line up again, from the database, the sends of every session held."""
        sessions = self.engine.active_sessions()
        log.warning("engine host %s: Redis lost its data; lining up the sends of %d session(s)", self.id, len(sessions))
        pending = self._sends_pending(sessions)
        for session_id in sessions:
            self._sends_line_up(session_id, pending.get(session_id, []))

    def _step_in_context(self, session_id: str) -> float | None:
        """A send line's step. While the spool holds events, the line waits: outcomes written
        before anything new is sent. A step that met an outage may have taken messages from
        the queue without sending them, so the line rebuilds the queue from the database first
        (what was sent is not sent again: `_claim` sends only what the database calls queued)."""
        if self.spool.pending:
            return SESSION_WAIT_SECONDS
        with self._step_lock(session_id), self.app.app_context():
            try:
                if session_id in self._relining:
                    self._reload_sends(session_id)
                    self._relining.discard(session_id)
                return self.send_step(session_id)
            except Exception as exc:
                if store_unreachable(exc):
                    self._relining.add(session_id)
                raise

    def send_step(self, session_id: str, now: float | None = None) -> float | None:
        """One step of a session's send line: send every message the governor lets go now (a
        group), or say how long to wait (None: nothing to send now).

        A group is written in three moves: its attempts in one commit before anything is sent,
        then each message through the engine, then its outcomes (statuses, counters, quota
        refunds) and their events, written by the event thread in one transaction with the
        other lines' outcomes and the receipts waiting (a group commit across sessions).
        Nothing is lost or sent twice if the process dies in between: the database still
        calls the messages queued, so
        `_reload_sends` queues them again when the session is taken up, and the engine
        recognises a message it already sent by its WhatsApp id (the simulator's outbox, the
        neonize engine's sent ledger) and answers for it without sending it again.
        """
        lease = self.lease_of(session_id)
        if lease is None:  # not this host's (or not sure it still is): nothing goes from here
            return None if session_id not in self.leases else SESSION_WAIT_SECONDS
        session = db.session.get(WaSession, session_id)
        if session is None:
            return None
        queue = send_queue(session_id)
        if session.status != SessionStatus.CONNECTED or session_id not in self._connected:
            # Hold everything until the session is back (here: the engine said so since it
            # started the session; the database may still show the last run's state).
            # No attempt is spent.
            return SESSION_WAIT_SECONDS if queue.depth() else None
        pace = session_pace(session)
        taken, wait = self._take(queue, session, pace, now)
        if not taken:
            return wait
        sends = self._claim(session_id, taken, lease)
        if sends is None:  # another host holds the session now: the messages stay for it
            for decision in taken:
                queue.later(decision.message_id, time.time(), lane=decision.lane or API_LANE)
            return None
        outcomes: list[tuple[_Send, SendOutcome]] = []
        broken: Exception | None = None
        for index, send in enumerate(sends):
            if self.lease_of(session_id) is None:  # it ran out meanwhile (a pause): the rest waits
                outcomes.extend((rest, UNTRIED) for rest in sends[index:])
                break
            if pace.typing:
                self._show_typing(send)
            try:
                outcome = self.message_send(send)
            except Exception as exc:
                if store_unreachable(exc):  # this one and the rest go back untried, their attempts given back
                    outcomes.extend((rest, UNTRIED) for rest in sends[index:])
                    broken = exc
                    break
                # A broken send must not drop the message from the queue.
                queue.later(send.message_id, time.time() + BROKEN_SEND_RETRY_SECONDS, **send.place)
                broken = broken or exc
                continue
            outcomes.append((send, outcome))
            if outcome.error_code is not None:
                # A failure may pause the session: the rest of the group waits for its health check.
                outcomes.extend((rest, UNTRIED) for rest in sends[index + 1 :])
                break
        self._outcomes_write(session, queue, pace, outcomes)
        if broken is not None:
            raise broken
        return 0.0

    def _take(
        self, queue: SendQueue, session: WaSession, pace: Pace, now: float | None
    ) -> tuple[list[Decision], float | None]:
        """What the governor lets go now; with none, how long to wait.

        A pace with a gap between sends (or typing before each) lets one message go per step,
        counted once it is sent, so the gap runs from the send. A pace without one lets every
        due message go, up to SEND_GROUP_MAX or for SEND_GROUP_SECONDS, each counted as it is
        taken so the next take keeps the per-minute and daily caps; a lane with a floor (a
        batch's delay) ends the group, and its floor runs again from the send (_outcomes_write)."""
        one_by_one = _one_by_one(pace)
        taken: list[Decision] = []
        started = time.monotonic()
        while True:
            at = time.time() if now is None else now
            decision = queue.take(pace, at, paired_at=session.paired_at, paused=session.paused_at is not None)
            if decision.message_id is None:
                return taken, decision.wait
            taken.append(decision)
            if one_by_one:
                return taken, None
            gap_until = queue.sent(decision.message_id, decision.lane, pace, at)
            if gap_until > at or len(taken) >= SEND_GROUP_MAX or time.monotonic() - started >= SEND_GROUP_SECONDS:
                return taken, None

    def _claim(self, session_id: str, taken: list[Decision], lease: _Lease) -> list[_Send] | None:
        """Spend an attempt on each taken message the database still calls queued (a due
        scheduled one becomes queued, unless the owner cancelled it first), in one commit.
        Cancelled or settled ones are left out: a repeated job or a reload must not send again.

        The commit is fenced: it holds the session's row under the lease's generation, so it
        fails (None) once another host took the session over, and a takeover waits for it."""
        if lease_lock(session_id, self.id, lease.generation) is None:
            db.session.rollback()
            return None
        messages = {
            message.id: message
            for message in db.session.scalars(
                select(Message)
                .where(Message.id.in_([decision.message_id for decision in taken]))
                .execution_options(populate_existing=True)
            )
        }
        claimed: list[tuple[Message, Decision]] = []
        for decision in taken:
            message = messages.get(decision.message_id)
            if message is None:
                continue
            if message.status == MessageStatus.SCHEDULED:
                if not scheduled_change(message, status=MessageStatus.QUEUED):
                    continue
                set_committed_value(message, "status", MessageStatus.QUEUED)
            elif message.status != MessageStatus.QUEUED:
                continue
            message.attempts += 1
            claimed.append((message, decision))
        # What the sends need, read before the commit expires the rows.
        sends = [_Send.of(message, decision) for message, decision in claimed]
        db.session.commit()
        return sends

    def _show_typing(self, send: _Send) -> None:
        """ "typing…" in the chat for a time that grows with the message (the pace's `typing`)."""
        seconds = min(TYPING_MAX_SECONDS, TYPING_BASE_SECONDS + send.length * TYPING_SECONDS_PER_CHAR)
        try:
            self.engine.presence_send(send.session_id, send.phone, "typing")
        except EngineError as exc:
            log.info("session %s: no typing shown before %s: %s", send.session_id, send.message_id, exc.message)
            return
        self._stopping.wait(seconds)

    def message_send(self, send: _Send) -> SendOutcome:
        """Send one claimed message through the engine: sent, failed, or to be tried again later."""
        delays = self.app.config["SEND_RETRY_DELAYS"]
        try:
            result = self.engine.send(send.session_id, send.phone, send.outgoing, wa_id=send.wa_id)
        except EngineError as exc:
            self.watch.send_noted(send.session_id, send.message_id, exc)
            if exc.code == "OVERLOADED":  # new sends on the session get 503 until WhatsApp recovers
                session_overload_mark(send.session_id, self.app.config["OVERLOAD_BACKOFF_SECONDS"])
            if exc.transient and send.attempts <= len(delays):
                log.info("message %s: %s; retrying in %ss", send.message_id, exc.message, delays[send.attempts - 1])
                return SendOutcome(retry_in=delays[send.attempts - 1])
            return SendOutcome(error_code=exc.code, error=exc.message, at=utcnow())
        self.watch.send_noted(send.session_id, send.message_id, None)
        return SendOutcome(at=result.timestamp)

    def _outcomes_write(
        self, session: WaSession, queue: SendQueue, pace: Pace, outcomes: list[tuple[_Send, SendOutcome]]
    ) -> None:
        """A group's outcomes: settled by the event thread in one transaction with whatever
        else is waiting to be written (roles/engine_events.py: engine_settle_apply), then the
        session's health looked at once; retries held for later, untried ones back at the
        front of their lanes.

        The outcomes go to the event thread first: they are what must not be lost (it spools
        them while the store is down). Then the queue's own bookkeeping; if Redis fails it,
        the error is raised once the outcomes are written, and the line rebuilds the queue
        from the database (see `_step_in_context`)."""
        sends = [
            SendSettled(send.message_id, None)
            if outcome is UNTRIED
            else SendSettled(
                send.message_id,
                MessageStatus.FAILED if outcome.error_code else MessageStatus.SENT,
                outcome.at,
                outcome.error_code,
                outcome.error,
            )
            for send, outcome in outcomes
            if outcome.settles or outcome is UNTRIED
        ]
        settled = None
        if sends:
            # Written by the event thread with every other line's outcomes and the receipts
            # waiting (one transaction for all: a group commit); the line goes on once written.
            codes = [outcome.error_code for _, outcome in outcomes if outcome.settles]
            settled = SendsSettled(session.id, sends, codes)
            db.session.rollback()  # no transaction is held while waiting
            self.events.put(settled)
        failed: Exception | None = None
        try:
            self._queue_keep(queue, pace, outcomes)
        except Exception as exc:
            if not store_unreachable(exc):
                raise
            failed = exc
        if settled is not None and not settled.written.wait(SETTLE_WAIT_SECONDS):
            log.warning("session %s: outcomes not written after %s s", session.id, SETTLE_WAIT_SECONDS)
        if failed is not None:
            raise failed

    @staticmethod
    def _queue_keep(queue: SendQueue, pace: Pace, outcomes: list[tuple[_Send, SendOutcome]]) -> None:
        """The send queue's side of a group's outcomes: retries held for later, untried ones
        back at the front of their lanes, the pace's counts and gaps."""
        now = time.time()
        for send, outcome in outcomes:
            if outcome.retry_in is not None:
                queue.later(send.message_id, now + outcome.retry_in, **send.place)
            elif outcome is UNTRIED:
                queue.later(send.message_id, now, **send.place)
        if _one_by_one(pace):  # counted once sent (see _take)
            for send, outcome in outcomes:
                if outcome.settles:
                    queue.sent(send.message_id, send.lane, pace, time.time())
        elif outcomes and outcomes[-1][0].floor > 0:
            queue.gap_restart(outcomes[-1][0].lane, pace, time.time())

    def simulate_inbound(self, session_id: str, sender: str, message: str | dict, media_file: str | None) -> dict:
        """A simulated contact writes: `message` is a text, or a message record (engines/outgoing.py)
        whose media the web role left in `media_file` (removed once read)."""
        if isinstance(message, dict):
            media = None
            if media_file:
                media = media_read(media_file)
                media_files().file_delete(media_file)
            message = Outgoing.from_record(message, media)
        return self._simulate("receive", session_id, sender, message)

    # -- threads --------------------------------------------------------------------------

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=f"{name}:{self.id}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _process_events(self) -> None:
        """Apply engine events in their order; a run of receipts and send lines' outcomes already
        waiting is written as one group (up to RECEIPT_GROUP_MAX), after the events before it
        and before those after, and the lines that wait for theirs go on.

        What cannot be applied because a store is out of reach goes to the spool, and so does
        everything after it until the spool is applied again (`_spool_apply`): the order holds."""
        held: EngineEvent | object | None = _NONE_WAITING
        while True:
            if self.spool.pending:
                if held is not _NONE_WAITING:
                    if held is None:
                        return
                    self._spool_add([held])
                    held = _NONE_WAITING
                try:
                    if not self._spool_apply():
                        return
                except Exception:  # the spool's file itself failed (a full disk): try again shortly
                    log.exception("engine host %s: could not read the event spool", self.id)
                    self._stopping.wait(1.0)
                continue
            event = self.events.get() if held is _NONE_WAITING else held
            held = _NONE_WAITING
            if event is None:
                return
            if _changes_state(event):  # a run of them in one transaction (a restore's hundreds)
                group = [event]
                held = self._next_waiting()
                while _changes_state(held) and len(group) < RECEIPT_GROUP_MAX:
                    group.append(held)
                    held = self._next_waiting()
                self._apply(self._states_apply, group, group)
                continue
            if not _settles(event):
                self._apply(self._event_apply, event, [event])
                continue
            group = [event]
            held = self._next_waiting()
            while _settles(held) and len(group) < RECEIPT_GROUP_MAX:
                group.append(held)
                held = self._next_waiting()
            self._apply(engine_settle_apply, group, group)

    def _next_waiting(self) -> EngineEvent | object | None:
        try:
            return self.events.get_nowait()
        except queue.Empty:
            return _NONE_WAITING

    def _event_apply(self, event: EngineEvent | object) -> None:
        if event is _ADOPT_ORPHANS:
            self.adopt_orphans()
        else:
            self._engine_event_apply(event)

    def _engine_event_apply(self, event: EngineEvent) -> None:
        """Apply an engine event, fenced by the lease it was stamped with; once the engine let
        go of a session (DISCONNECTED, applied), its lease is not kept."""
        engine_event_apply(event, self.id)
        if event.kind == EngineEventKind.DISCONNECTED:
            self._lease_forget(event.session_id, event.data.get(LEASE_STAMP))

    def _states_apply(self, events: list[EngineEvent]) -> None:
        """`_engine_event_apply` for a run of session state changes, in one transaction."""
        engine_states_apply(events, self.id)
        for event in events:
            if event.kind == EngineEventKind.DISCONNECTED:
                self._lease_forget(event.session_id, event.data.get(LEASE_STAMP))

    def _apply(self, apply: Callable, what, items: list) -> None:
        """Apply an event (or a group) while Redis answers (what is applied is published
        through it); spool it if a store is out of reach; log and drop it if it is broken."""
        try:
            with self.app.app_context():
                queues.connection.ping()
                apply(what)
            self._events_outage.recovered()
        except Exception as exc:
            if store_unreachable(exc):
                self._spool_retry_at = time.monotonic() + self._events_outage.failed(exc)
                self._spool_add(items)
            else:  # one bad event must not stop the stream
                log.exception("could not apply engine event(s) %s", what)
        finally:
            for item in items:
                if isinstance(item, SendsSettled):
                    item.written.set()

    def _spool_add(self, items: list) -> None:
        """Keep events (not the host's own markers) in the spool, behind what it holds. A line
        waiting for its outcomes goes on once they are on disk."""
        kept = [item for item in items if isinstance(item, EngineEvent | SendsSettled)]
        try:
            self.spooled += self.spool.add(kept)
        except Exception:
            for item in kept:  # one that cannot be kept must not take the others with it
                try:
                    self.spooled += self.spool.add([item])
                except Exception:
                    log.exception("engine host %s: could not spool %s; dropped", self.id, item)
        finally:
            for item in items:
                if isinstance(item, SendsSettled):
                    item.written.set()

    def _spool_apply(self) -> bool:
        """A step of applying the spool, oldest first: the next event (or run of receipts
        and outcomes) once the stores answer, with backoff while they do not; meanwhile new
        events join the spool. False once the host stops (the spool stays for its next run)."""
        came: list = []  # what came in joins the spool, behind what is there (one write)
        event = self._next_waiting()
        while event is not _NONE_WAITING and event is not None:
            came.append(event)
            event = self._next_waiting()
        self._spool_add(came)
        if event is None:
            return False
        wait = self._spool_retry_at - time.monotonic()
        if wait > 0:
            try:
                event = self.events.get(timeout=wait)
            except queue.Empty:
                return True
            if event is None:
                return False
            self._spool_add([event])
            return True
        entries = self.spool.head(RECEIPT_GROUP_MAX)
        if not entries:
            return True
        run = entries[:1]
        if _settles(entries[0][1]):
            run = list(itertools.takewhile(lambda entry: _settles(entry[1]), entries))
        items = [item for _, item in run]
        try:
            with self.app.app_context():
                self._stores_check()
                if _settles(items[0]):
                    engine_settle_apply(items)
                else:
                    self._engine_event_apply(items[0])
        except Exception as exc:
            if store_unreachable(exc):
                self._spool_retry_at = time.monotonic() + self._events_outage.failed(exc)
                return True
            log.exception("engine host %s: could not apply spooled engine event(s) %s; dropped", self.id, items)
        self.spool_applied += len(run)  # counted before the spool shows them gone
        self.spool.remove([seq for seq, _ in run])
        if not self.spool.pending:
            log.info(
                "engine host %s: spool applied (%d event(s) spooled, %d applied from it since the start)",
                self.id,
                self.spooled,
                self.spool_applied,
            )
            self._events_outage.recovered()
        return True

    def _stores_check(self) -> None:
        """Raise if Redis or the database does not answer (before applying spooled events)."""
        queues.connection.ping()
        db.session.execute(text("SELECT 1"))

    def _heartbeat(self) -> None:
        host_heartbeat(
            self.id,
            engine=self.engine.name,
            sessions=len(self.leases),
            capacity=self.app.config["ENGINE_HOST_CAPACITY"],
            draining=self.draining,
        )

    def _beat(self) -> None:
        """One heartbeat, then what follows it: the host's sessions taken up (once its spool is
        applied; on a thread of its own, so that the heartbeat goes on meanwhile), their sends
        lined up again if Redis lost its data, and the load evened with the other hosts."""
        self._heartbeat()
        if self.spool.pending:
            return
        if not self._restored:
            if not self._restore_lock.locked():
                self._spawn(self._restore_in_thread, "engine-restore")
            return
        if queues.connection.set(LINED_UP_KEY.format(self.id), 1, nx=True):
            self._sends_reload_all()
        self.rebalance()
        self.watch.beat()

    def _restore_in_thread(self) -> None:
        try:
            with self.app.app_context():
                self._restore_once()
        except Exception as exc:
            if not store_unreachable(exc):
                log.exception("engine host %s: taking its sessions up failed", self.id)
            # The next heartbeat tries again.

    def _heartbeat_forever(self) -> None:
        interval = self.app.config["ENGINE_HOST_HEARTBEAT_SECONDS"]
        wait = interval if self._restored else RESTORE_RETRY_SECONDS
        while not self._stopping.wait(wait):
            try:
                with self.app.app_context():
                    self._beat()
            except Exception as exc:
                if store_unreachable(exc):
                    wait = min(interval, self._beat_outage.failed(exc))
                else:
                    log.exception("engine host heartbeat failed")
                    wait = interval
                continue
            self._beat_outage.recovered()
            if self._restored:
                # A host that died leaves its sessions behind once its heartbeat expires.
                self.events.put(_ADOPT_ORPHANS)
            wait = interval if self._restored else RESTORE_RETRY_SECONDS


def _one_by_one(pace: Pace) -> bool:
    """Whether the pace lets one message go per send step (see EngineHost._take)."""
    return pace.typing or pace.min_gap_seconds > 0 or pace.jitter_seconds > 0


def _changes_state(event: object) -> bool:
    """Whether the event changes a session's own state (written in runs of them)."""
    return isinstance(event, EngineEvent) and event.kind in STATE_KINDS


def _settles(event: object) -> bool:
    """Whether the event thread writes it in a group: a receipt, or a send line's outcomes."""
    return isinstance(event, SendsSettled) or (isinstance(event, EngineEvent) and event.kind == EngineEventKind.RECEIPT)


def neonize_options(config) -> dict:
    """The NEONIZE_* settings as the engine's keywords (NEONIZE_PROBE_ADDRESS -> probe_address)."""
    return {key.removeprefix("NEONIZE_").lower(): value for key, value in config.items() if key.startswith("NEONIZE_")}


def _answer(action) -> dict:
    """An engine action's outcome for a job whose caller waits on its result (JSON-ready)."""
    try:
        return {"value": action()}
    except EngineError as exc:
        return {"error": exc.code, "message": exc.message, "transient": exc.transient}


def queues_for_host(app: Flask, host_id: str | None):
    name = engine_host_queue_name(host_id) if host_id else ENGINE_QUEUE
    with app.app_context():
        return queues.queue(name)
