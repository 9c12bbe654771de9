"""The engine host: owns the live WhatsApp sessions of one process.

It consumes its own RQ queue and the shared engine queue without forking, restores the
sessions that should be online when it starts, turns engine events into stored state and
Socket.IO pushes (on one event thread, so engine threads only enqueue), and keeps a
heartbeat in Redis for routing and /healthz.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from pathlib import Path

from flask import Flask
from rq.serializers import JSONSerializer
from sqlalchemy import or_, select, update

from engines import Engine, EngineError, EngineEvent, EngineSettings, engine_create
from engines.outgoing import Outgoing
from extensions import db, queues
from jobs import engine as engine_jobs
from jobs.queues import ENGINE_QUEUE, engine_host_queue_name
from jobs.worker import ThreadWorker
from models import Message, MessageStatus, SessionStatus, WaSession
from models.base import as_utc, utcnow
from roles.engine_events import engine_event_apply
from roles.send_lines import SessionSenders
from services.governor.pace import health_after_send, send_queue, session_pace
from services.governor.queue import API_LANE
from services.hosts.routing import (
    engine_queue_for,
    host_heartbeat,
    host_is_alive,
    host_retire,
    hosts_alive,
    session_overload_mark,
)
from services.messaging.lifecycle import message_status_set
from services.messaging.outgoing import outgoing_load
from services.messaging.scheduling import scheduled_change
from services.platform.faults import faults_read

log = logging.getLogger(__name__)
# Queued on the event thread to adopt sessions whose host died, between engine events.
_ADOPT_ORPHANS = object()
# How often a send line looks again at a session that is not connected.
SESSION_WAIT_SECONDS = 2.0
# When sending a message failed unexpectedly (a bug, not WhatsApp): it is tried again this much later.
BROKEN_SEND_RETRY_SECONDS = 5.0
# "typing…" before a message when the session's pace asks for it: this long, by its length.
TYPING_BASE_SECONDS = 1.0
TYPING_SECONDS_PER_CHAR = 0.03
TYPING_MAX_SECONDS = 8.0


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
        )
        options = {}
        if app.config["WA_ENGINE"] == "simulator":
            options["faults"] = lambda session_id: faults_read(connection, session_id)
        elif app.config["WA_ENGINE"] == "neonize":
            options = neonize_options(app.config)
        self.engine: Engine = engine_create(app.config["WA_ENGINE"], self.events.put, settings, **options)
        host_queues = [queues_for_host(app, self.id), queues_for_host(app, None)]
        self.worker = ThreadWorker(
            host_queues,
            connection=connection,
            serializer=JSONSerializer,
            name=f"engine-host:{self.id}:{threading.get_native_id()}",
            poll_seconds=app.config["WORKER_POLL_SECONDS"],
        )
        self.senders = SessionSenders(self._step_in_context)
        app.extensions["wagate.engine_host"] = self

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event and heartbeat threads and restore sessions; jobs need `work()`."""
        self._spawn(self._process_events, "engine-events")
        with self.app.app_context():
            self._heartbeat()
            self.restore()
        self._spawn(self._heartbeat_forever, "engine-heartbeat")

    def work(self) -> None:
        """Consume engine jobs in the calling thread until `stop()`."""
        with self.app.app_context():
            self.worker.work(logging_level="WARNING")

    def stop(self) -> None:
        self._stopping.set()
        self.worker.stop()
        self.senders.stop()
        self.engine.shutdown()
        self.events.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        with self.app.app_context():
            host_retire(self.id)
        self.app.extensions.pop("wagate.engine_host", None)

    def restore(self) -> None:
        """On start: bring back this host's sessions, unowned ones and those of dead hosts."""
        alive = set(hosts_alive()) - {self.id}
        query = select(WaSession.id).where(WaSession.wanted_online.is_(True))
        if alive:
            query = query.where(or_(WaSession.engine_host.is_(None), WaSession.engine_host.not_in(alive)))
        self._start_all(db.session.scalars(query).all())

    def adopt_orphans(self) -> None:
        """While running: take over the sessions of hosts whose heartbeat has expired."""
        alive = set(hosts_alive()) | {self.id}
        query = select(WaSession.id).where(
            WaSession.wanted_online.is_(True),
            WaSession.engine_host.is_not(None),
            WaSession.engine_host.not_in(alive),
        )
        self._start_all(db.session.scalars(query).all())

    def _start_all(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            self.session_start(session_id)
        if session_ids:
            log.info("engine host %s took up %d session(s)", self.id, len(session_ids))

    # -- what engine jobs call ------------------------------------------------------------

    def session_start(self, session_id: str) -> None:
        session = db.session.get(WaSession, session_id)
        if session is None or not session.wanted_online:
            return
        owner = session.engine_host
        if owner not in (None, self.id) and host_is_alive(owner):
            # Another living host holds this session: it must do the work.
            engine_queue_for(owner).enqueue(engine_jobs.engine_session_start, args=(session_id,))
            return
        claimed = db.session.execute(
            update(WaSession).where(WaSession.id == session_id, _same_owner(owner)).values(engine_host=self.id)
        ).rowcount
        db.session.commit()
        if claimed:
            self.engine.session_start(session_id)
            self._reload_sends(session_id)

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
        """Put a queued (or scheduled) message in its session's send queue."""
        message = db.session.get(Message, message_id)
        if message is not None and message.status in (MessageStatus.QUEUED, MessageStatus.SCHEDULED):
            self._line_up(message)

    def queue_nudge(self, session_id: str) -> None:
        """The session's pace, pause or queue changed: its line looks again now."""
        self.senders.nudge(session_id)

    def _line_up(self, message: Message) -> None:
        queue = send_queue(message.session_id)
        lane = f"batch:{message.batch_id}" if message.batch_id else API_LANE
        if message.status == MessageStatus.SCHEDULED:
            due = as_utc(message.send_after).timestamp()
            queue.later(message.id, due, lane=lane, floor_seconds=message.min_gap_ms / 1000)
        else:
            queue.push(message.id, lane=lane, floor_seconds=message.min_gap_ms / 1000)
        self.senders.nudge(message.session_id)

    def _reload_sends(self, session_id: str) -> None:
        """Queue again what was handed over but not sent (after a restart or a takeover):
        the database is the record, the Redis queue is rebuilt from it (nothing twice)."""
        pending = db.session.scalars(
            select(Message)
            .where(
                Message.session_id == session_id,
                or_(
                    (Message.status == MessageStatus.QUEUED) & Message.dispatched_at.is_not(None),
                    Message.status == MessageStatus.SCHEDULED,
                ),
            )
            .order_by(Message.created_at, Message.position)
        ).all()
        for message in pending:
            self._line_up(message)

    def _step_in_context(self, session_id: str) -> float | None:
        with self.app.app_context():
            return self.send_step(session_id)

    def send_step(self, session_id: str, now: float | None = None) -> float | None:
        """One step of a session's send line: send what the governor lets go, or say how long
        to wait (None: nothing to send now)."""
        session = db.session.get(WaSession, session_id)
        if session is None:
            return None
        queue = send_queue(session_id)
        if session.status != SessionStatus.CONNECTED:
            # Hold everything until the session is back; no attempt is spent.
            return SESSION_WAIT_SECONDS if queue.depth() else None
        pace = session_pace(session)
        now = time.time() if now is None else now
        decision = queue.take(pace, now, paired_at=session.paired_at, paused=session.paused_at is not None)
        if decision.message_id is None:
            return decision.wait
        message = db.session.get(Message, decision.message_id)
        if message is None or not self._claim(message):
            return 0.0  # cancelled, or settled already: a repeated job or a reload must not send again
        if pace.typing:
            self._show_typing(message)
        floor = message.min_gap_ms / 1000
        try:
            retry_in = self.message_send(message.id)
        except Exception:  # a broken send must not drop the message from the queue
            queue.later(message.id, time.time() + BROKEN_SEND_RETRY_SECONDS, lane=decision.lane, floor_seconds=floor)
            raise
        if retry_in is not None:
            queue.later(message.id, time.time() + retry_in, lane=decision.lane, floor_seconds=floor)
            return 0.0
        queue.sent(message.id, decision.lane, pace, time.time())
        db.session.refresh(message)
        health_after_send(session, message.error_code if message.status == MessageStatus.FAILED else None)
        return 0.0

    def _claim(self, message: Message) -> bool:
        """A due scheduled message becomes queued, unless the owner cancelled it first."""
        if message.status == MessageStatus.QUEUED:
            return True
        if message.status != MessageStatus.SCHEDULED:
            return False
        promoted = scheduled_change(message, status=MessageStatus.QUEUED)
        db.session.commit()
        db.session.refresh(message)
        return bool(promoted)

    def _show_typing(self, message: Message) -> None:
        """ "typing…" in the chat for a time that grows with the message (the pace's `typing`)."""
        seconds = min(TYPING_MAX_SECONDS, TYPING_BASE_SECONDS + len(message.body or "") * TYPING_SECONDS_PER_CHAR)
        try:
            self.engine.presence_send(message.session_id, message.phone, "typing")
        except EngineError as exc:
            log.info("session %s: no typing shown before %s: %s", message.session_id, message.id, exc.message)
            return
        self._stopping.wait(seconds)

    def message_send(self, message_id: str) -> float | None:
        """Send one message; returns seconds to wait before trying again, or None once settled."""
        message = db.session.get(Message, message_id)
        if message is None or message.status != MessageStatus.QUEUED:
            return None  # already settled: a repeated job or a reload must not send again
        delays = self.app.config["SEND_RETRY_DELAYS"]
        message.attempts += 1
        db.session.commit()
        try:
            result = self.engine.send(message.session_id, message.phone, outgoing_load(message), wa_id=message.wa_id)
        except EngineError as exc:
            if exc.code == "OVERLOADED":  # new sends on the session get 503 until WhatsApp recovers
                session_overload_mark(message.session_id, self.app.config["OVERLOAD_BACKOFF_SECONDS"])
            if exc.transient and message.attempts <= len(delays):
                log.info("message %s: %s; retrying in %ss", message.id, exc.message, delays[message.attempts - 1])
                return delays[message.attempts - 1]
            message_status_set(message, MessageStatus.FAILED, at=utcnow(), error_code=exc.code, error=exc.message)
            return None
        message_status_set(message, MessageStatus.SENT, at=result.timestamp)
        return None

    def simulate_inbound(self, session_id: str, sender: str, message: str | dict, media_file: str | None) -> dict:
        """A simulated contact writes: `message` is a text, or a message record (engines/outgoing.py)
        whose media the web role left in `media_file` (removed once read)."""
        if isinstance(message, dict):
            media = None
            if media_file:
                path = Path(self.app.config["DATA_DIR"]) / "media" / media_file
                media = path.read_bytes()
                path.unlink(missing_ok=True)
            message = Outgoing.from_record(message, media)
        return self._simulate("receive", session_id, sender, message)

    # -- threads --------------------------------------------------------------------------

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=f"{name}:{self.id}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _process_events(self) -> None:
        while (event := self.events.get()) is not None:
            try:
                with self.app.app_context():
                    if event is _ADOPT_ORPHANS:
                        self.adopt_orphans()
                    else:
                        engine_event_apply(event)
            except Exception:  # one bad event must not stop the stream
                log.exception("could not apply engine event %s", event)

    def _heartbeat(self) -> None:
        host_heartbeat(self.id, engine=self.engine.name, sessions=len(self.engine.active_sessions()))

    def _heartbeat_forever(self) -> None:
        interval = self.app.config["ENGINE_HOST_HEARTBEAT_SECONDS"]
        while not self._stopping.wait(interval):
            try:
                with self.app.app_context():
                    self._heartbeat()
                    # A host that died leaves its sessions behind once its heartbeat expires.
                    self.events.put(_ADOPT_ORPHANS)
            except Exception:
                log.exception("engine host heartbeat failed")


def neonize_options(config) -> dict:
    """The NEONIZE_* settings as the engine's keywords (NEONIZE_PROBE_ADDRESS -> probe_address)."""
    return {key.removeprefix("NEONIZE_").lower(): value for key, value in config.items() if key.startswith("NEONIZE_")}


def _answer(action) -> dict:
    """An engine action's outcome for a job whose caller waits on its result (JSON-ready)."""
    try:
        return {"value": action()}
    except EngineError as exc:
        return {"error": exc.code, "message": exc.message, "transient": exc.transient}


def _same_owner(owner: str | None):
    return WaSession.engine_host.is_(None) if owner is None else WaSession.engine_host == owner


def queues_for_host(app: Flask, host_id: str | None):
    name = engine_host_queue_name(host_id) if host_id else ENGINE_QUEUE
    with app.app_context():
        return queues.queue(name)
