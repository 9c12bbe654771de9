"""The neonize engine: real WhatsApp multi-device sessions, one neonize client each.

How a session lives (one runner thread per session):

    probe WhatsApp ──unreachable──> ERROR "Cannot reach WhatsApp…", wait, probe again
         │ reachable
    connect() ── fails at once ──> ERROR with neonize's reason, wait, try again
         │ (blocks for the session's whole life; whatsmeow reconnects dropped sockets itself)
         ├─ not paired: QR codes (QR events), or a pairing code; they run out → DISCONNECTED
         ├─ paired: CONNECTED; a drop → RECONNECTING → CONNECTED
         └─ ends when the engine stops the client: the owner's stop or logout, or WhatsApp's
            logout (DISCONNECTED, store cleared), stream replaced or client outdated (ERROR),
            a temporary ban or a refused connection (ERROR, then a new attempt later)

Waits between attempts double from NEONIZE_RECONNECT_BASE_SECONDS up to
NEONIZE_RECONNECT_MAX_SECONDS: every connect() opens the device store again and neonize
never closes the old handle, so attempts must stay rare. The probe (a plain TCP connect to
NEONIZE_PROBE_ADDRESS, shared by all sessions for a few seconds) keeps a network outage
from costing a handle per attempt, and answers within seconds where neonize's own dial can
hang for a minute.

Crash containment (neonize's Go side ends the process on misuse, see neonize-notes §7):
- Go calls back on the session's own thread; handlers only put the event on a queue, and
  one event thread maps it and reports it.
- every Go call passes the process-wide gate (gate.py), installed at the Go boundary;
- calls that abort on a session that is not logged in are never made on one: sends and
  number checks first check the session is logged in, LID lookups run only on a logged-in
  client and never beside its stop, and nothing asks for the device of a store that has
  none (each store holds one device, loaded as "the first");
- one client per session id for the life of the process, its GC finalizer detached (a
  collected twin would stop the live one);
- nothing here forks, and the engine host that imports this never does either.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import neonize.client
from neonize.client import NewClient
from neonize.events import (
    ChatPresenceEv,
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    HistorySyncEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    PresenceEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import JID, PairStatus
from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
from neonize.utils.enum import ChatPresence, ChatPresenceMedia, ParticipantChange, Presence
from neonize.utils.jid import build_jid

from engines.base import (
    QR_EXPIRED_REASON,
    STREAM_REPLACED_REASON,
    Engine,
    EngineError,
    EngineEvent,
    EngineEventKind,
    EngineListener,
    EngineSettings,
    SendResult,
)
from engines.neonize import events as mapping
from engines.neonize import messages
from engines.neonize.gate import GATE, GatedGo
from engines.neonize.store import device_stores
from engines.outgoing import Outgoing
from engines.state import LocalState, SharedState

log = logging.getLogger(__name__)

# whatsmeow shows the first QR code for 60 s and each of the next ones for 20 s.
QR_FIRST_SECONDS = 60
QR_NEXT_SECONDS = 20
PROBE_TIMEOUT_SECONDS = 5.0
PROBE_REUSE_SECONDS = 5.0
SHUTDOWN_GRACE_SECONDS = 3.0
REASON_MAX = 500
# The sent ledger (engines/state.py). wagate picks a message's id (`wa_id`) before the first
# attempt, so that a retry can never deliver it twice; neonize cannot send under a chosen
# id (its Go SendMessage lets whatsmeow make one up). So the ledger records an attempt
# before the send and WhatsApp's id after it: a send repeating a completed `wa_id` returns
# the earlier result, receipts naming WhatsApp's ids are translated back to ours, and an
# attempt left open (the process ended while WhatsApp had the message) is not sent again
# on its own (see send_content). Entries are kept this long.
SENT_RETENTION_SECONDS = 30 * 86400
KNOWN_NUMBER_SECONDS = 86400
UNKNOWN_NUMBER_SECONDS = 600

OUTDATED_REASON = (
    "WhatsApp refused this client version as outdated (405): upgrade neonize on the engine host, then connect again."
)
UNCERTAIN_REASON = (
    "WhatsApp never confirmed an earlier attempt at this message (it timed out, or the engine host "
    "stopped mid-send), so it may have been delivered. It is not sent again by itself, so that it "
    "cannot arrive twice; retry it to send it anyway."
)
LOGIN_FAILURES = {
    "err-client-outdated": ("outdated", OUTDATED_REASON),
    "err-scanned-without-multidevice": (
        "pair_failed",
        "The phone that scanned the QR code has multi-device turned off; update WhatsApp and connect again.",
    ),
}

# What the handlers are told, by neonize event type.
HANDLED_EVENTS = {
    "connected": ConnectedEv,
    "disconnected": DisconnectedEv,
    "logged_out": LoggedOutEv,
    "stream_replaced": StreamReplacedEv,
    "temporary_ban": TemporaryBanEv,
    "connect_failure": ConnectFailureEv,
    "client_outdated": ClientOutdatedEv,
    "pair_status": PairStatusEv,
    "message": MessageEv,
    "receipt": ReceiptEv,
    "presence": PresenceEv,
    "chat_presence": ChatPresenceEv,
    "keepalive_timeout": KeepAliveTimeoutEv,
    "keepalive_restored": KeepAliveRestoredEv,
    "history_sync": HistorySyncEv,
}
# What we show in a chat, as whatsmeow's chat presence and its media.
CHAT_PRESENCES = {
    "typing": (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
    "recording": (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO),
    "paused": (ChatPresence.CHAT_PRESENCE_PAUSED, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
}


# Kinds whose file is downloaded when they arrive.
INBOUND_MEDIA_KINDS = frozenset({"image", "video", "audio", "document", "sticker"})


# What WhatsApp's per-participant error codes mean (HTTP-like, from whatsmeow).
PARTICIPANT_ERRORS = {403: "their privacy settings do not allow it", 404: "not on WhatsApp", 409: "already a member"}


def group_jid(group_id: str) -> JID:
    return build_jid(group_id.partition("@")[0], "g.us")


def group_view(info) -> dict:
    """A neonize GroupInfo as the engine interface's group dict."""

    def role(participant) -> str:
        return "superadmin" if participant.IsSuperAdmin else "admin" if participant.IsAdmin else "member"

    def member(participant) -> dict:
        """A participant by number, with their LID when WhatsApp gave it."""
        view = {"phone": participant.PhoneNumber.User or participant.JID.User, "role": role(participant)}
        lid = mapping.lid_of(participant.LID) or mapping.lid_of(participant.JID)
        return view | ({"lid": lid} if lid else {})

    return {
        "id": f"{info.JID.User}@g.us",
        "name": info.GroupName.Name,
        "topic": info.GroupTopic.Topic,
        "owner": info.OwnerPN.User or info.OwnerJID.User,
        "createdAt": datetime.fromtimestamp(info.GroupCreated, UTC).isoformat() if info.GroupCreated else None,
        "participants": [member(participant) for participant in info.Participants],
    }


class _Client(NewClient):
    """A NewClient that hands whatsmeow's pairing outcomes (success, timeout, error) to the
    engine; neonize itself prints them."""

    def on_login_status(self, status: str) -> None:
        """Replaced per session by the engine."""

    def _NewClient__onLoginStatus(self, uuid: int, status: int) -> None:
        self.on_login_status(ctypes.string_at(status).decode(errors="replace"))


class _NotOnWhatsApp(Exception):
    pass


@dataclass
class _Session:
    id: str
    client: _Client
    wake: threading.Event = field(default_factory=threading.Event)
    runner: threading.Thread | None = None
    want: bool = False  # keep it online: started, and not stopped since
    generation: int = 0  # one per connect attempt; events of an older one are dropped
    ending: str | None = None  # why the engine stopped the client, for the runner to act on
    ending_reason: str | None = None
    ban_seconds: float = 0.0
    failures: int = 0  # attempts in a row that did not get the session online
    qr_count: int = 0
    qr: dict | None = None
    pair_code_issued: bool = False
    logged_in: bool = False
    phone: str | None = None
    # Since when whatsmeow's keep-alives go unanswered (KeepAliveTimeout; time.monotonic()),
    # and how many in a row; None once one is answered again (KeepAliveRestored).
    keepalive_lost_at: float | None = None
    keepalive_errors: int = 0
    # Held around stop() and around the calls that abort on a stopped client (LID lookups).
    stop_lock: threading.Lock = field(default_factory=threading.Lock)


class _Call:
    """A Go operation running in its own thread, so its caller can stop waiting for it."""

    def __init__(self, operation: Callable[[], object], name: str) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[_Call], None]] = []
        self._finished = False
        self._lock = threading.Lock()
        threading.Thread(target=self._run, args=(operation,), name=name, daemon=True).start()

    def _run(self, operation: Callable[[], object]) -> None:
        try:
            self.value = operation()
        except BaseException as exc:  # handed to whoever waits
            self.error = exc
        with self._lock:
            self._finished = True
            callbacks = list(self._callbacks)
        for callback in callbacks:  # before `done`: whoever waited sees the outcome recorded
            callback(self)
        self.done.set()

    def when_done(self, callback: Callable[[_Call], None]) -> None:
        with self._lock:
            if not self._finished:
                self._callbacks.append(callback)
                return
        callback(self)


def _short(error: str) -> str:
    """whatsmeow's nested errors, cut to what and why: `failed to dial … (no such host)`."""
    parts = [part.strip() for part in error.split(": ")]
    return f"{parts[0]} ({parts[-1]})" if len(parts) > 2 else error


def _seconds(delay: float) -> str:
    return f"{delay:.0f} s" if delay >= 10 else f"{delay:.1f} s"


def error_from_neonize(text: str, *, doing: str) -> EngineError:
    """One of the engine codes for a neonize/whatsmeow error message."""
    lowered = text.lower()
    message = f"{doing}: {text}"
    if any(s in lowered for s in ("not connected", "not logged in", "client is nil", "doesn't contain a device jid")):
        return EngineError("SESSION_NOT_CONNECTED", f"The session is not connected to WhatsApp: {text}", transient=True)
    if "rate-overlimit" in lowered or "429" in lowered:
        return EngineError("OVERLOADED", f"WhatsApp is overloaded (rate-overlimit): {text}", transient=True)
    if any(s in lowered for s in ("timed out", "timeout", "deadline exceeded")):
        return EngineError("ENGINE_TIMEOUT", f"Timed out waiting for WhatsApp: {text}", transient=True)
    if any(s in lowered for s in ("401", "403", "not-authorized", "forbidden")):
        return EngineError("UPSTREAM_AUTH", f"WhatsApp refused the session's credentials: {text}", transient=True)
    if any(s in lowered for s in ("400", "406", "bad-request", "not-acceptable")):
        return EngineError("REJECTED", f"WhatsApp rejected the message: {text}")
    if re.search(r"\b463\b", lowered):  # WhatsApp refuses new chats beyond the number's reach-out limit
        return EngineError(
            "UPSTREAM_ERROR",
            f"{doing}: WhatsApp refused it (error 463: reach-out limit for new chats): {text}",
            transient=True,
        )
    if any(s in lowered for s in ("dial", "no such host", "connection refused", "unreachable", "websocket")):
        return EngineError("UNREACHABLE", f"Could not reach WhatsApp: {text}", transient=True)
    return EngineError("UPSTREAM_ERROR", message, transient=True)


class NeonizeEngine(Engine):
    name = "neonize"

    def __init__(
        self,
        listener: EngineListener,
        settings: EngineSettings,
        *,
        database_url: str = "",
        state: SharedState | None = None,
        reconnect_base_seconds: float = 2.0,
        reconnect_max_seconds: float = 300.0,
        connect_gate_seconds: float = 1.0,
        call_timeout_seconds: float = 30.0,
        probe_address: str = "web.whatsapp.com:443",
        device_name: str = "wagate",
        log_level: str = "WARNING",
        go=None,
    ) -> None:
        super().__init__(listener, settings)
        # Device stores and the sent ledger: files under the engine's folder, or the host's
        # shared state (PostgreSQL); NEONIZE_DATABASE_URL names a database for the stores alone.
        state = state or LocalState(settings.data_dir)
        self.stores = device_stores(settings.data_dir / "neonize", database_url or state.device_store_url)
        self.ledger = state.sent_ledger("neonize/sent.db")
        self.ledger.prune(SENT_RETENTION_SECONDS)
        self.reconnect_base_seconds = reconnect_base_seconds
        self.reconnect_max_seconds = reconnect_max_seconds
        self.call_timeout_seconds = call_timeout_seconds
        self.connect_gate_seconds = connect_gate_seconds
        self.probe_address = probe_address
        self.device_props = DeviceProps(os=device_name, platformType=DeviceProps.CHROME)
        # Every Go call of every client goes through the gate; tests put a stub behind it.
        self.go = GatedGo(go if go is not None else neonize.client.gocode, GATE, connect_hold=connect_gate_seconds)
        logging.getLogger("neonize.utils.log").setLevel(log_level)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.RLock()
        self._in_flight: dict[tuple[str, str], _Call] = {}
        self._recipients: dict[tuple[str, str], tuple[JID | None, float]] = {}
        self._probe_lock = threading.Lock()
        self._probe_at = -PROBE_REUSE_SECONDS
        self._probe_problem: str | None = None
        self._stopping = threading.Event()
        self._inbox: queue.Queue[tuple[str, int, str, object] | None] = queue.Queue()
        self._pump = threading.Thread(target=self._pump_forever, name="neonize-events", daemon=True)
        self._pump.start()

    # -- the Engine interface -------------------------------------------------------------

    def session_start(self, session_id: str) -> None:
        with self._lock:
            session = self._session(session_id)
            session.want = True
            held = session.runner is not None and session.runner.is_alive()
            if not held:
                session.failures = 0
                session.runner = threading.Thread(
                    target=self._run, args=(session,), name=f"neonize-session:{session_id}", daemon=True
                )
                session.runner.start()
        if held:
            self._nudge(session)

    def session_stop(self, session_id: str, reason: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._let_go(session, "stop")
        self._emit(EngineEventKind.DISCONNECTED, session_id, reason=reason, loggedOut=False)

    def session_logout(self, session_id: str, reason: str) -> None:
        session = self._sessions.get(session_id)
        told_whatsapp = False
        if session is not None and session.logged_in:
            try:
                self._go_call(session.client.logout, what=f"logout:{session_id}")
                told_whatsapp = True
            except EngineError as exc:
                log.warning("session %s: WhatsApp was not told of the logout: %s", session_id, exc.message)
        paired = told_whatsapp or self.is_paired(session_id)
        if session is not None:
            self._let_go(session, "logout")
        self.stores.clear(session_id)
        if paired and not told_whatsapp:
            reason += " (WhatsApp could not be reached: remove the device under Linked devices on the phone too)"
        self._emit(EngineEventKind.DISCONNECTED, session_id, reason=reason, loggedOut=True)

    def is_paired(self, session_id: str) -> bool:
        return self.stores.device_jid(session_id) is not None

    def active_sessions(self) -> list[str]:
        with self._lock:
            return [session.id for session in self._sessions.values() if session.want]

    def send_text(self, session_id: str, to: str, text: str, *, wa_id: str) -> SendResult:
        return self.send_content(session_id, to, lambda client: messages.text_message(text), wa_id=wa_id)

    def pair_code(self, session_id: str, phone: str) -> str:
        session = self._sessions.get(session_id)
        if session is None or not session.want or session.ending or session.logged_in or not session.qr_count:
            raise EngineError("NOT_PAIRING", "This session is not showing a QR code, so it cannot be linked now")
        try:
            code = self._go_call(lambda: session.client.PairPhone(phone, True), what=f"pair-phone:{session_id}")
        except EngineError as exc:
            message = f"WhatsApp gave no pairing code: {exc.message}"
            raise EngineError(exc.code, message, transient=exc.transient) from exc
        session.pair_code_issued = True  # the QR codes still count down, but are not shown any more
        return code

    def check_numbers(self, session_id: str, phones: list[str]) -> dict[str, str | None]:
        session = self._logged_in(session_id)
        found = self._go_call(
            lambda: session.client.is_on_whatsapp(*[f"+{phone}" for phone in phones]), what=f"check:{session_id}"
        )
        result: dict[str, str | None] = dict.fromkeys(phones)
        for entry in found:
            phone = entry.Query.lstrip("+")
            if phone in result:
                result[phone] = f"{entry.JID.User}@{entry.JID.Server}" if entry.IsIn and entry.JID.User else None
                self._remember_recipient(session_id, phone, entry.JID if entry.IsIn else None)
        return result

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            if session.want or session.runner is not None:
                self._let_go(session, "stop")
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for session in sessions:
            if session.runner is not None:
                session.runner.join(max(0.0, deadline - time.monotonic()))
        self._inbox.put(None)
        self._pump.join(1.0)
        self.ledger.close()

    def send(self, session_id: str, to: str, outgoing: Outgoing, *, wa_id: str) -> SendResult:
        """Any kind of message (engines/outgoing.py), built for the recipient's chat."""
        outgoing = self._whatsapp_ids(session_id, outgoing)

        def build(client: NewClient):
            me = client.me.JID if client.me is not None and client.me.JID.User else None
            chat = group_jid(to) if to.endswith("@g.us") else build_jid(to)
            return messages.outgoing_message(client, outgoing, chat=chat, me=me)

        return self.send_content(session_id, to, build, wa_id=wa_id)

    def _whatsapp_ids(self, session_id: str, outgoing: Outgoing) -> Outgoing:
        """Replies and reactions to our own messages name them by our ids; WhatsApp knows
        them by the ids it gave them (the sent ledger). Inbound messages carry WhatsApp's already."""

        def theirs(wa_id: str) -> str:
            entry = self.ledger.get(session_id, wa_id)
            return entry.whatsapp_id if entry is not None and entry.completed else wa_id

        if outgoing.quoted_wa_id and outgoing.quoted_from_me:
            outgoing = replace(outgoing, quoted_wa_id=theirs(outgoing.quoted_wa_id))
        if outgoing.reaction is not None and outgoing.reaction.from_me:
            reaction = replace(outgoing.reaction, message_wa_id=theirs(outgoing.reaction.message_wa_id))
            outgoing = replace(outgoing, reaction=reaction)
        return outgoing

    def send_content(self, session_id: str, to: str, build: Callable[[NewClient], object], *, wa_id: str) -> SendResult:
        """Send what `build` makes for the client, once per `wa_id` (the sent ledger).

        A send still in flight when its caller stops waiting keeps going; a retry waits for
        it instead of sending again, and its outcome is recorded when it comes.
        """
        key = (session_id, wa_id)
        with self._lock:
            call = self._in_flight.get(key)
        if call is None:
            entry = self.ledger.get(session_id, wa_id)
            if entry is not None and entry.completed:
                return SendResult(wa_id=wa_id, timestamp=datetime.fromtimestamp(entry.sent_at, UTC))
            if entry is not None:  # an attempt this process did not make: an earlier one died mid-send
                self.ledger.forget(session_id, wa_id)  # the owner's explicit retry does send it
                raise EngineError("ENGINE_TIMEOUT", UNCERTAIN_REASON)
            session = self._logged_in(session_id)
            with self._lock:
                call = self._in_flight.get(key)
                if call is None:
                    self.ledger.attempt(session_id, wa_id)
                    call = _Call(lambda: self._deliver(session, to, build), name=f"neonize-send:{wa_id}")
                    self._in_flight[key] = call
                    call.when_done(lambda done: self._settle(session_id, wa_id, done))
        if not call.done.wait(self.call_timeout_seconds):
            raise EngineError(
                "ENGINE_TIMEOUT",
                f"WhatsApp did not confirm the message within {self.call_timeout_seconds:g} s; "
                "it may still go out, and a retry will not send it twice",
                transient=True,
            )
        if call.error is not None:
            raise self._send_error(call.error)
        return SendResult(wa_id=wa_id, timestamp=mapping.epoch_datetime(call.value.Timestamp))

    # -- sending internals ----------------------------------------------------------------

    def _deliver(self, session: _Session, to: str, build: Callable[[NewClient], object]):
        recipient = self._recipient(session, to)
        return session.client.send_message(recipient, build(session.client))

    def _recipient(self, session: _Session, phone: str) -> JID:
        """The JID WhatsApp files the number under (checked once a day per number); a group's as given."""
        if phone.endswith("@g.us"):
            return group_jid(phone)
        known = self._recipients.get((session.id, phone))
        if known is None or known[1] < time.monotonic():
            found = session.client.is_on_whatsapp(f"+{phone}")
            jid = next((entry.JID for entry in found if entry.IsIn), None)
            known = self._remember_recipient(session.id, phone, jid)
        if known[0] is None:
            raise _NotOnWhatsApp(phone)
        return known[0] if known[0].User else build_jid(phone)

    def _remember_recipient(self, session_id: str, phone: str, jid: JID | None) -> tuple[JID | None, float]:
        keep = KNOWN_NUMBER_SECONDS if jid is not None else UNKNOWN_NUMBER_SECONDS
        known = (jid, time.monotonic() + keep)
        self._recipients[(session_id, phone)] = known
        return known

    def _settle(self, session_id: str, wa_id: str, call: _Call) -> None:
        """Record how a send ended (before it stops counting as in flight)."""
        try:
            if call.error is None:
                sent_at = mapping.epoch_datetime(call.value.Timestamp).timestamp()
                self.ledger.complete(session_id, wa_id, call.value.ID, sent_at)
            elif self._send_error(call.error).code != "ENGINE_TIMEOUT":
                self.ledger.forget(session_id, wa_id)  # it did not go out: sending again is safe
            # A timeout leaves the attempt open: WhatsApp may have the message.
        except Exception:  # the ledger is closed when the engine shut down mid-send
            log.exception("could not record the outcome of message %s", wa_id)
        with self._lock:
            self._in_flight.pop((session_id, wa_id), None)

    def _send_error(self, error: BaseException) -> EngineError:
        if isinstance(error, EngineError):
            return error
        if isinstance(error, _NotOnWhatsApp):
            return EngineError("NUMBER_NOT_ON_WHATSAPP", "Number not on WhatsApp")
        if isinstance(error, messages.MediaError):
            return EngineError("REJECTED", str(error))
        if isinstance(error, NeonizeError):
            return error_from_neonize(str(error), doing="WhatsApp did not take the message")
        log.error("unexpected send failure", exc_info=error)
        return EngineError("UPSTREAM_ERROR", f"Sending failed: {error}", transient=True)

    def _logged_in(self, session_id: str) -> _Session:
        """The session, if it is logged in (sends and lookups abort the process otherwise)."""
        session = self._sessions.get(session_id)
        if session is None or not session.want or not session.logged_in:
            raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp", transient=True)
        if not self._go_call(lambda: session.client.is_logged_in, what=f"is-logged-in:{session_id}"):
            raise EngineError("SESSION_NOT_CONNECTED", "The session is not logged in to WhatsApp", transient=True)
        return session

    def _go_call(self, operation: Callable[[], object], *, what: str, timeout: float | None = None):
        """Run a Go operation, waiting at most `timeout` (the call itself cannot be cut short)."""
        call = _Call(operation, name=f"neonize-call:{what}")
        doing = what.split(":")[0]
        if not call.done.wait(self.call_timeout_seconds if timeout is None else timeout):
            raise EngineError("ENGINE_TIMEOUT", f"Timed out waiting for WhatsApp ({doing})", transient=True)
        if isinstance(call.error, NeonizeError):
            raise error_from_neonize(str(call.error), doing=doing)
        if call.error is not None:
            raise call.error
        return call.value

    # -- sessions -------------------------------------------------------------------------

    def _session(self, session_id: str) -> _Session:
        """The session's state, with its one client for the life of the process."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                session = _Session(id=session_id, client=self._client(session_id))
                self._sessions[session_id] = session
                self._subscribe(session)
            return session

    def _client(self, session_id: str) -> _Client:
        client = _Client(self.stores.name(session_id), props=self.device_props, uuid=session_id)
        # A garbage-collected client stops whatever live client has its id: this one is kept.
        client._stop_finalizer.detach()
        client._NewClient__client = self.go
        # The contact store holds its own handle on Go: it goes through the gate too.
        client.contact._ContactStore__client = self.go
        return client

    def _subscribe(self, session: _Session) -> None:
        """Handlers run on the session's Go thread: they only queue, tagged with the attempt."""

        def handler(kind: str):
            return lambda client, event: self._inbox.put((session.id, session.generation, kind, event))

        for kind, event_type in HANDLED_EVENTS.items():
            session.client.event(event_type)(handler(kind))
        session.client.qr(handler("qr"))
        session.client.on_login_status = lambda status: self._inbox.put(
            (session.id, session.generation, "login_status", status)
        )

    def _nudge(self, session: _Session) -> None:
        """A start for a session already held: try now if it is waiting, or say where it is."""
        if session.logged_in:
            self._emit(EngineEventKind.CONNECTED, session.id, phone=self._phone(session))
        elif session.qr is not None and not session.pair_code_issued:
            self._emit(EngineEventKind.QR, session.id, **session.qr)
        else:
            session.failures = 0
            session.wake.set()

    def _let_go(self, session: _Session, ending: str) -> None:
        with self._lock:
            session.want = False
            if session.ending is None:
                session.ending = ending
            session.logged_in = False
            session.wake.set()
        self._stop_client(session)

    def _stop_client(self, session: _Session) -> None:
        with session.stop_lock:
            session.client.stop()

    def _end(self, session: _Session, ending: str, reason: str) -> None:
        """WhatsApp ended the session (or its pairing): stop the client; the runner reports."""
        with self._lock:
            if session.ending is not None:
                return
            session.ending, session.ending_reason = ending, reason
            session.logged_in = False
        self._stop_client(session)

    def _run(self, session: _Session) -> None:
        while session.want and not self._stopping.is_set():
            with self._lock:
                session.generation += 1
                session.ending = session.ending_reason = None
                session.qr, session.qr_count, session.pair_code_issued = None, 0, False
                session.wake.clear()
            problem = self._unreachable() or self._connect(session)
            with self._lock:
                session.logged_in = False
                ending, reason = session.ending, session.ending_reason
                if not session.want or self._stopping.is_set():
                    return  # a stop or logout: whoever asked reports it
            if ending in ("stop", "logout", "reconnect"):
                continue  # stopped, then started again (or asked to reconnect) before this attempt was over
            if ending in ("logged_out", "qr_expired", "pair_failed"):
                if ending == "logged_out":
                    self.stores.clear(session.id)
                session.want = False
                signal = {"signal": "logged_out"} if ending == "logged_out" else {}
                self._emit(
                    EngineEventKind.DISCONNECTED, session.id, reason=reason, loggedOut=ending == "logged_out", **signal
                )
                return
            if ending in ("stream_replaced", "outdated"):
                session.want = False
                signal = {"signal": "stream_replaced"} if ending == "stream_replaced" else {}
                self._emit(EngineEventKind.ERROR, session.id, reason=reason, **signal)
                return
            session.failures += 1
            delay = self._backoff(session.failures)
            if ending == "banned":
                delay = max(delay, session.ban_seconds)
            elif ending == "refused":
                reason = f"{reason}. Trying again in {_seconds(delay)} (attempt {session.failures})."
            else:
                detail = _short(problem) if problem else "the connection ended"
                reason = f"Cannot reach WhatsApp: {detail}. Retrying in {_seconds(delay)} (attempt {session.failures})."
            signal = {"signal": "temporary_ban"} if ending == "banned" else {}
            self._emit(EngineEventKind.ERROR, session.id, reason=reason, **signal)
            session.wake.wait(delay)

    # -- liveness -------------------------------------------------------------------------

    def probe(self, session_id: str) -> bool:
        """whatsmeow pings WhatsApp every 20-30 s: alive while its keep-alives are answered
        (no KeepAliveTimeout since the last KeepAliveRestored) and its websocket is up."""
        session = self._sessions.get(session_id)
        if session is None or not session.want or not session.logged_in:
            raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp", transient=True)
        if session.keepalive_lost_at is not None:
            return False
        return bool(
            self._go_call(
                lambda: session.client.is_connected, what=f"is-connected:{session_id}", timeout=PROBE_TIMEOUT_SECONDS
            )
        )

    def reconnect(self, session_id: str) -> None:
        """Stop the client and let the session's runner connect it again at once."""
        session = self._sessions.get(session_id)
        if session is None or not session.want:
            raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp")
        with self._lock:
            if session.ending is not None:
                return  # ending already: the runner acts on it
            session.ending = "reconnect"
            was_online, session.logged_in = session.logged_in, False
            session.keepalive_lost_at, session.keepalive_errors = None, 0
        if was_online:
            self._emit(EngineEventKind.RECONNECTING, session_id)
        self._stop_client(session)

    def carried(self, session_id: str, wa_id: str) -> bool | None:
        """The sent ledger says: acknowledged (True), never attempted (False), or an attempt
        under way or never confirmed (None: WhatsApp may have it)."""
        with self._lock:
            if (session_id, wa_id) in self._in_flight:
                return None
        entry = self.ledger.get(session_id, wa_id)
        if entry is None:
            return False
        return True if entry.completed else None

    def _connect(self, session: _Session) -> str | None:
        """Run the client until the session ends; what went wrong if it could not start."""
        # A stop that lands before Go has registered the client has nothing to cancel yet;
        # once registration is surely over, stop again if the session is no longer wanted.
        guard = threading.Timer(self.connect_gate_seconds + 0.5, self._stop_if_let_go, (session, session.generation))
        guard.daemon = True
        try:
            self.stores.prepare(session.id)
            guard.start()
            session.client.connect()
        except NeonizeError as exc:
            return str(exc)
        except Exception as exc:  # a store that cannot be opened, say
            log.exception("session %s: could not start", session.id)
            return f"{type(exc).__name__}: {exc}"
        finally:
            guard.cancel()
        return None

    def _stop_if_let_go(self, session: _Session, generation: int) -> None:
        if session.generation == generation and (not session.want or session.ending):
            self._stop_client(session)

    def _unreachable(self) -> str | None:
        """Why WhatsApp cannot be reached right now, or None (one probe serves every session)."""
        if not self.probe_address:
            return None
        with self._probe_lock:
            if time.monotonic() - self._probe_at < PROBE_REUSE_SECONDS:
                return self._probe_problem
            host, _, port = self.probe_address.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_SECONDS).close()
                self._probe_problem = None
            except OSError as exc:
                self._probe_problem = f"{self.probe_address} is unreachable ({exc.strerror or exc})"
            self._probe_at = time.monotonic()
            return self._probe_problem

    def _backoff(self, failures: int) -> float:
        delay = min(self.reconnect_max_seconds, self.reconnect_base_seconds * 2 ** min(failures - 1, 30))
        return delay * random.uniform(1.0, 1.1)  # sessions cut off together do not retry together

    # -- events ---------------------------------------------------------------------------

    def _pump_forever(self) -> None:
        while (item := self._inbox.get()) is not None:
            session_id, generation, kind, event = item
            session = self._sessions.get(session_id)
            if session is None or generation != session.generation or session.ending or not session.want:
                continue  # from an attempt that is over
            try:
                self._on_event(session, kind, event)
            except Exception:  # one bad event must not stop the others
                log.exception("session %s: could not handle %s", session_id, kind)

    def _on_event(self, session: _Session, kind: str, event) -> None:
        if kind == "qr":
            self._on_qr(session, event.decode() if isinstance(event, bytes) else event)
        elif kind == "login_status":
            self._on_login_status(session, event)
        elif kind == "pair_status":
            if event.Status == PairStatus.SUCCESS:
                session.phone = mapping.phone_of(event.ID) or session.phone
            else:
                self._end(session, "pair_failed", f"Linking failed: {event.Error or 'WhatsApp refused it'}")
        elif kind == "connected":
            session.logged_in = True
            session.failures = 0
            session.keepalive_lost_at, session.keepalive_errors = None, 0  # a fresh connection
            self._emit(EngineEventKind.CONNECTED, session.id, phone=self._phone(session))
            self._sync_contacts(session)
        elif kind == "disconnected":
            if session.logged_in:  # whatsmeow reconnects by itself
                session.logged_in = False
                self._emit(EngineEventKind.RECONNECTING, session.id)
        elif kind == "logged_out":
            self._end(session, "logged_out", mapping.logged_out_reason(event))
        elif kind == "stream_replaced":
            self._end(session, "stream_replaced", STREAM_REPLACED_REASON)
        elif kind == "client_outdated":
            self._end(session, "outdated", OUTDATED_REASON)
        elif kind == "temporary_ban":
            session.ban_seconds = float(event.Expire)
            self._end(session, "banned", mapping.temporary_ban_reason(event))
        elif kind == "connect_failure":
            self._end(session, "refused", mapping.connect_failure_reason(event))
        elif kind == "keepalive_timeout":  # the connection may have gone deaf: see probe()
            if session.keepalive_lost_at is None:
                session.keepalive_lost_at = time.monotonic()
            session.keepalive_errors = event.ErrorCount
        elif kind == "keepalive_restored":
            session.keepalive_lost_at, session.keepalive_errors = None, 0
        elif kind == "message":
            data = mapping.inbound_message(event, lambda lid: self._phone_jid_for(session, lid))
            if data is not None:
                self._on_message(session, event, data)
        elif kind == "receipt":
            self._on_receipt(session, event)
        elif kind == "history_sync":
            for batch in mapping.history_batches(event.Data):
                received = len(batch["messages"])
                self._emit(EngineEventKind.HISTORY, session.id, requestId=None, received=received, final=True, **batch)
        elif kind in ("presence", "chat_presence"):
            update = mapping.presence_update if kind == "presence" else mapping.chat_presence_update
            data = update(event, lambda lid: self._phone_jid_for(session, lid))
            if data is not None:
                self._emit(EngineEventKind.PRESENCE, session.id, **data)

    def _on_message(self, session: _Session, event, data: dict) -> None:
        """A contact's message: its media fetched, a poll vote decrypted, and the messages it
        points at (quoted, reacted to, voted on) named by our ids where they are ours."""
        if data["type"] in INBOUND_MEDIA_KINDS:
            data["media"] = self._download(session, event.Message, data["waId"])
        if data.get("quotedId"):
            data["quotedId"] = self._ours(session, data["quotedId"])
        for pointer in ("reaction", "pollVote"):
            if pointer in data:
                data[pointer]["messageWaId"] = self._ours(session, data[pointer]["messageWaId"])
        if "pollVote" in data:
            chosen = self._poll_choice(session, event, data["waId"])
            if chosen is None:
                return  # a vote that cannot be read changes nothing
            data["pollVote"]["optionHashes"] = chosen
        self._emit(EngineEventKind.MESSAGE, session.id, **data)

    def _ours(self, session: _Session, whatsapp_id: str) -> str:
        """Our id for a message WhatsApp names by its own id (the sent ledger); theirs if not ours."""
        return self.ledger.our_id(session.id, whatsapp_id) or whatsapp_id

    def _poll_choice(self, session: _Session, event, wa_id: str) -> list[str] | None:
        """The options a poll vote chose, as the hex SHA-256 of their names (WhatsApp encrypts
        votes with the poll's secret, which the device store keeps)."""
        if not session.logged_in:
            return None
        try:
            vote = self._go_call(lambda: session.client.decrypt_poll_vote(event), what=f"poll-vote:{wa_id}")
        except Exception as exc:  # noqa: BLE001 - an unreadable vote must not stop the others
            log.warning("session %s: poll vote %s not decrypted: %s", session.id, wa_id, exc)
            return None
        return [option.hex() for option in vote.selectedOptions]

    # -- history --------------------------------------------------------------------------

    def history_request(
        self,
        session_id: str,
        chat: str,
        *,
        request_id: str,
        count: int | None = None,
        since: str | None = None,
        oldest: dict | None = None,
    ) -> None:
        """Refused: neonize builds WhatsApp's on-demand history request
        (neonize.builder.build_history_sync_request), but the phone only takes it as a peer
        message, and neonize's send_message cannot send one. What WhatsApp syncs by itself
        (HistorySyncEv) is stored as history all the same."""
        self._logged_in(session_id)
        raise EngineError(
            "REJECTED",
            "The neonize engine cannot ask the phone for older messages (neonize cannot send the peer "
            "message WhatsApp needs for it); history the phone syncs by itself is stored",
        )

    # -- presence -------------------------------------------------------------------------

    def presence_send(self, session_id: str, chat: str | None, state: str) -> None:
        if state in CHAT_PRESENCES:
            jid = group_jid(chat) if chat.endswith("@g.us") else build_jid(chat)
            shown, media = CHAT_PRESENCES[state]
            self._client_call(session_id, "presence", lambda client: client.send_chat_presence(jid, shown, media))
        else:
            presence = Presence.AVAILABLE if state == "available" else Presence.UNAVAILABLE
            self._client_call(session_id, "presence", lambda client: client.send_presence(presence))

    def presence_subscribe(self, session_id: str, phone: str) -> None:
        jid = build_jid(phone)
        self._client_call(session_id, "presence-subscribe", lambda client: client.subscribe_presence(jid))

    # -- groups ---------------------------------------------------------------------------

    def _client_call(self, session_id: str, what: str, call):
        """A call on a logged-in session's client, through the gate; WhatsApp's refusals as EngineError."""
        session = self._logged_in(session_id)
        try:
            return self._go_call(lambda: call(session.client), what=f"{what}:{session_id}")
        except EngineError:
            raise
        except Exception as exc:  # neonize's errors say what WhatsApp refused
            raise error_from_neonize(str(exc), doing=what) from exc

    def groups_list(self, session_id: str) -> list[dict]:
        found = self._client_call(session_id, "groups", lambda client: client.get_joined_groups())
        return [group_view(info) for info in found]

    def group_create(self, session_id: str, name: str, participants: list[str]) -> dict:
        jids = [build_jid(phone) for phone in participants]
        return group_view(self._client_call(session_id, "group-create", lambda client: client.create_group(name, jids)))

    def group_info(self, session_id: str, group_id: str) -> dict:
        jid = group_jid(group_id)
        return group_view(self._client_call(session_id, "group-info", lambda client: client.get_group_info(jid)))

    def group_participants(self, session_id: str, group_id: str, action: str, phones: list[str]) -> dict[str, str]:
        jid, change = group_jid(group_id), ParticipantChange(action)
        jids = [build_jid(phone) for phone in phones]
        changed = self._client_call(
            session_id, f"group-{action}", lambda client: client.update_group_participants(jid, jids, change)
        )
        outcome = dict.fromkeys(phones, "ok")
        for participant in changed:
            phone = participant.PhoneNumber.User or participant.JID.User
            if phone in outcome and participant.Error:
                outcome[phone] = PARTICIPANT_ERRORS.get(participant.Error, f"refused by WhatsApp ({participant.Error})")
        return outcome

    def group_invite_link(self, session_id: str, group_id: str, *, revoke: bool = False) -> str:
        jid = group_jid(group_id)
        return self._client_call(session_id, "group-invite", lambda client: client.get_group_invite_link(jid, revoke))

    def group_leave(self, session_id: str, group_id: str) -> None:
        jid = group_jid(group_id)
        self._client_call(session_id, "group-leave", lambda client: client.leave_group(jid))

    def _sync_contacts(self, session: _Session) -> None:
        """The phone's address book, once logged in (the contact store aborts Go before that)."""
        with session.stop_lock:
            if not session.logged_in or session.client.me is None:
                return
            try:
                found = self._go_call(session.client.contact.get_all_contacts, what=f"contacts:{session.id}")
            except Exception as exc:  # noqa: BLE001 - the book comes again at the next login
                log.warning("session %s: address book not read: %s", session.id, exc)
                return
        contacts = [
            {"phone": entry.JID.User, "name": entry.Info.FullName or entry.Info.PushName}
            for entry in found
            if entry.JID.Server == "s.whatsapp.net" and entry.JID.User.isdigit()
        ]
        self._emit(EngineEventKind.CONTACTS, session.id, contacts=contacts)

    def _download(self, session: _Session, content, wa_id: str) -> bytes | None:
        """A received message's media, fetched here on the pump thread (never in Go's callback);
        None if it cannot be had (the message is still stored, without its file)."""
        if not session.logged_in:
            return None
        try:
            return self._go_call(lambda: session.client.download_any(content), what=f"download:{wa_id}")
        except Exception as exc:  # noqa: BLE001 - a lost attachment must not lose the message
            log.warning("session %s: media of message %s not downloaded: %s", session.id, wa_id, exc)
            return None

    def _on_qr(self, session: _Session, payload: str) -> None:
        session.qr_count += 1
        if session.qr_count > self.settings.qr_max_refreshes + 1:
            self._end(session, "qr_expired", QR_EXPIRED_REASON)
            return
        seconds = QR_FIRST_SECONDS if session.qr_count == 1 else QR_NEXT_SECONDS
        expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
        session.qr = {"payload": payload, "expiresAt": expires_at, "number": session.qr_count}
        if not session.pair_code_issued:
            self._emit(EngineEventKind.QR, session.id, **session.qr)

    def _on_login_status(self, session: _Session, status: str) -> None:
        """How a pairing ended: `success` (CONNECTED follows), `timeout` or an error."""
        if status == "success":
            return
        if status == "timeout":
            self._end(session, "qr_expired", QR_EXPIRED_REASON)
            return
        ending, reason = LOGIN_FAILURES.get(status, ("pair_failed", f"Linking failed ({status}); connect again."))
        self._end(session, ending, reason)

    def _on_receipt(self, session: _Session, event) -> None:
        update = mapping.receipt_update(event)
        if update is None:
            return
        status, whatsapp_ids, at = update
        for whatsapp_id in whatsapp_ids:
            wa_id = self.ledger.our_id(session.id, whatsapp_id)
            if wa_id is not None:  # messages sent from the phone itself are not ours to track
                self._emit(EngineEventKind.RECEIPT, session.id, waId=wa_id, status=status, timestamp=at)

    def _phone(self, session: _Session) -> str | None:
        """The linked phone's number: from the pairing, the device Go reported, or the store."""
        me = session.client.me
        return session.phone or (mapping.phone_of(me.JID) if me is not None else None) or self.stores.phone(session.id)

    def _phone_jid_for(self, session: _Session, lid: JID) -> JID | None:
        """The phone-number JID for a LID, from the device store's LID map.

        Go's lookup dereferences the client without a check: on a stopped client it ends
        the process. So it runs only for a logged-in session, and never beside a stop.
        """
        with session.stop_lock:
            if not session.logged_in or session.client.me is None:
                return None
            try:
                jid = session.client.get_pn_from_lid(lid)  # a local store lookup
            except NeonizeError:
                return None
        return jid if jid.User else None

    def _emit(self, kind: EngineEventKind, session_id: str, **data) -> None:
        if data.get("reason") and len(data["reason"]) > REASON_MAX:  # sessions keep 500 characters
            data["reason"] = data["reason"][: REASON_MAX - 1] + "…"
        self.listener(EngineEvent(kind=kind, session_id=session_id, data=data))
