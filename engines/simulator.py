"""A fake WhatsApp network, in process: deterministic, with faults switchable at run time.

Rules (documented in the README):
- Pairing: each QR encodes `<PUBLIC_URL>/sim/pair/<sessionId>/<token>`. A POST to it is the
  simulated phone scanning; the session then connects with the phone given (or one derived
  from the session id). A QR lives QR_REFRESH_SECONDS; after QR_MAX_REFRESHES refreshes the
  session gives up and goes disconnected.
- Pairing by phone number: a session showing QR codes hands out an 8-character code for a
  phone (`pair_code`), as WhatsApp does. The simulated phone enters it with a POST to
  `/sim/pair-code/<sessionId>` ({"code"}) and the session connects as that phone. Once a
  code is out, new QR codes are no longer shown; the code lasts as long as they would have.
- Numbers: one whose last four digits are 0000 is not on WhatsApp; every other number is.
- Sending: every accepted message is written once to the session's outbox
  (DATA_DIR/engines/simulator/outbox/<sessionId>.jsonl); a send repeating a message id is
  not delivered again. Receipts follow: `delivered` after SIMULATOR_RECEIPT_SECONDS, `read`
  after twice that, except for numbers ending in 9 (people who never open WhatsApp).
  WhatsApp keeps them for the session, as it would for a linked device that went offline
  (in the shared state, engines/state.py: DATA_DIR/engines/simulator/receipts.db, or
  PostgreSQL): a session that comes back after a restart, here or on another engine host,
  gets those still due, the late ones at once, and again those reported in its last
  RECEIPT_REDELIVER_SECONDS (the host may have died before writing them).
- Paired devices and groups are kept in the shared state too (simulator/<sessionId>.json,
  simulator/groups/<sessionId>.json): a session taken over by another engine host is
  still paired and in its groups. The outbox and the presence log stay on each host.
- Presence: what a session shows (typing, recording, paused in a chat; available or
  unavailable) is written to DATA_DIR/engines/simulator/presence/<sessionId>.jsonl. Typing
  in a chat needs the number on WhatsApp (or the session in the group). Following a
  contact's presence answers at once: simulated contacts are always online. A simulated
  contact's presence (online, typing...) and poll votes come from the simulator API.
- Faults (per session or for all): `timeout` (calls hang SIMULATOR_TIMEOUT_SECONDS, then
  fail), `unreachable` (no network route to WhatsApp), `upstream_error` (WhatsApp answers
  5xx), `auth_error` (WhatsApp refuses the session's credentials), `overload` (WhatsApp
  answers 429), `rejected` (WhatsApp refuses the message itself as malformed: sends only),
  `disconnect` (connected sessions drop to reconnecting until the fault is cleared),
  `ack_never_comes` (WhatsApp takes a send but never acknowledges it: the call waits, nothing
  is carried and no receipt follows, until the fault is cleared, when the ack comes and the
  message is carried once, or the connection ends, when it fails as SESSION_NOT_CONNECTED,
  transient) and `deaf` (each connected session it names goes deaf once per switch-on: it
  stays "connected" and sends go out, but no inbound message, receipt or presence reaches
  it, and its liveness check (`probe`) fails, until it reconnects; what it missed then
  arrives, as WhatsApp keeps it for a device that was away).
- One live connection per paired device: a session connecting (started with its pairing,
  or paired) claims the device, and a connection of the same session elsewhere (another
  engine host, or another simulator on the same Redis) stops at once with an ERROR
  `signal: stream_replaced`, as WhatsApp ends the older stream; a send it still attempts
  fails as SESSION_NOT_CONNECTED (transient: the message stays queued). The newest wins.
- Each outbox line names the engine host that sent it (`host`): the outbox is per host.
- Identity: contacts' messages carry their number (`phone`); with the fault `sender_as_lid`
  WhatsApp names them by a LID too (`lid`, stable per number), as it does more and more.
- History: a backfill (`history_request`) is answered in batches of HISTORY_BATCH. The
  simulated phone holds older messages only under the fault `history_on_request`: one an
  hour before the oldest the session has, the contact's and its own by turns.

An idle session costs the ticker nothing: it reads the faults once per tick for all sessions,
looks only at the sessions a `disconnect` fault names (or that are reconnecting), and finds
what is due (receipts, QR codes to refresh) at the top of heaps kept by due time. Nor do
the claims on devices: it reads their count once per tick and the holders only when it moved.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from engines.base import (
    PRESENCE_CHAT_STATES,
    QR_EXPIRED_REASON,
    STREAM_REPLACED_REASON,
    Engine,
    EngineError,
    EngineEvent,
    EngineEventKind,
    EngineListener,
    EngineSettings,
    QrCode,
    SendResult,
)
from engines.outgoing import Outgoing
from engines.state import LocalState, SharedState

log = logging.getLogger(__name__)

FAULTS = (
    "timeout",
    "unreachable",
    "upstream_error",
    "auth_error",
    "overload",
    "rejected",
    "disconnect",
    "ack_never_comes",
    "deaf",
    "sender_as_lid",
    "history_on_request",
)
# What a deaf connection does not hear (held until the session reconnects).
UNHEARD_KINDS = frozenset({EngineEventKind.MESSAGE, EngineEventKind.RECEIPT, EngineEventKind.PRESENCE})
# A history backfill: how many messages one batch carries, and the most one request gets.
HISTORY_BATCH = 50
HISTORY_MAX = 1000
HISTORY_SPACING = timedelta(hours=1)  # the simulated phone's older messages, one an hour
TICK_SECONDS = 0.2
# WhatsApp's pairing codes: 8 characters without 0, I, O or U, which are easily misread.
PAIR_CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"

ALL_SESSIONS = "*"
# The faults switched on, by scope (a session id, or ALL_SESSIONS). Called before each call a
# session makes (a switch applies to the very next one) and once per tick, so it must be cheap.
FaultSource = Callable[[], Mapping[str, AbstractSet[str]]]


def _no_faults() -> Mapping[str, AbstractSet[str]]:
    return {}


class Connections(Protocol):
    """Where simulators record which connection holds each paired device."""

    def claim(self, session_id: str, holder: str) -> None: ...

    def holders(self, session_ids: list[str]) -> list[str | None]: ...

    def claims(self) -> int: ...


class LocalConnections:
    """Which connection holds each paired device, for simulators in one process (the
    default). Simulators sharing a Redis share a registry kept there instead
    (services/platform/sim_connections.py), with the same three methods."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}
        self._claims = 0
        self._lock = threading.Lock()

    def claim(self, session_id: str, holder: str) -> None:
        """`holder` is now the session's live connection: any other one is replaced."""
        with self._lock:
            self._holders[session_id] = holder
            self._claims += 1

    def holders(self, session_ids: list[str]) -> list[str | None]:
        """Each session's live connection (None: unknown, nobody claimed it)."""
        with self._lock:
            return [self._holders.get(session_id) for session_id in session_ids]

    def claims(self) -> int:
        """A count that moves with every claim (read once per tick, so it must be cheap)."""
        with self._lock:
            return self._claims


def simulated_phone(session_id: str) -> str:
    """The phone number a scan without one pairs with: stable for a session id."""
    digest = int(hashlib.sha256(session_id.encode()).hexdigest(), 16)
    return f"1555{digest % 10_000_000:07d}"


def simulated_lid(phone: str) -> str:
    """The LID WhatsApp names a number by (stable for the number, unlike it in every digit)."""
    digest = int(hashlib.sha256(f"lid:{phone}".encode()).hexdigest(), 16)
    return f"{10**14 + digest % (9 * 10**14)}@lid"


def number_exists(phone: str) -> bool:
    return not phone.endswith("0000")


def number_reads(phone: str) -> bool:
    return not phone.endswith("9")


@dataclass
class _SimSession:
    state: str
    qr: QrCode | None = None
    qr_token: str | None = None
    qr_count: int = 0
    phone: str | None = None
    pair_code: str | None = None
    pair_phone: str | None = None
    deaf: bool = False  # this connection hears nothing (the `deaf` fault)


class SimulatorEngine(Engine):
    name = "simulator"

    def __init__(
        self,
        listener: EngineListener,
        settings: EngineSettings,
        *,
        faults: FaultSource = _no_faults,
        connections: Connections | None = None,
        state: SharedState | None = None,
    ) -> None:
        super().__init__(listener, settings)
        self.faults = faults
        self.connections = connections or LocalConnections()
        # Devices, groups and owed receipts: files under the engine's folder unless the host shares them.
        self.state = state or LocalState(settings.data_dir)
        # This simulator's connection to WhatsApp, as the device registry names it.
        self.connection_id = f"{settings.host_id or 'simulator'}:{secrets.token_hex(6)}"
        self._claims_seen: int | None = None
        self.store_dir = Path(settings.data_dir) / "simulator"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.outbox_dir = self.store_dir / "outbox"
        self.outbox_dir.mkdir(exist_ok=True)
        self.presence_dir = self.store_dir / "presence"
        self.presence_dir.mkdir(exist_ok=True)
        self._sessions: dict[str, _SimSession] = {}
        self._sent_ids: dict[str, set[str]] = {}
        self._group_cache: dict[str, dict] = {}
        self._receipts: list[tuple[datetime, int, str, str, str]] = []
        self._receipt_book = self.state.receipt_book("simulator/receipts.db")
        self._receipts_owed: set[str] = set()  # sessions whose owed receipts were taken up
        self._timer_seq = 0
        self._qr_expiries: list[tuple[datetime, int, str]] = []  # (expires, seq, session)
        self._reconnecting: set[str] = set()
        self._deafened: set[str] = set()  # sessions the `deaf` fault in force made deaf already
        self._unheard: dict[str, list[EngineEvent]] = {}  # what deaf sessions missed, in order
        self._in_flight: set[tuple[str, str]] = set()  # sends waiting for WhatsApp's ack
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._ticker = threading.Thread(target=self._tick_forever, name="simulator-ticker", daemon=True)
        self._ticker.start()

    # -- the Engine interface -------------------------------------------------------------

    def session_start(self, session_id: str) -> None:
        try:
            self._raise_faults(session_id)
        except EngineError as exc:
            self._emit(EngineEventKind.ERROR, session_id, reason=exc.message)
            return
        # Read before the lock: a host starting hundreds of sessions at once reads their
        # devices side by side, not one after another.
        device = self._device_load(session_id)
        with self._lock:
            current = self._sessions.get(session_id)
            if current is not None and current.state == "connected":
                self.connections.claim(session_id, self.connection_id)
                self._emit(EngineEventKind.CONNECTED, session_id, phone=current.phone)
                return
            if current is not None and current.state == "pending" and current.qr is not None:
                self._emit_qr(session_id, current)
                return
            if device is None:
                session = _SimSession(state="pending")
                self._sessions[session_id] = session
                self._next_qr(session_id, session)
                return
            self.connections.claim(session_id, self.connection_id)
            self._sessions[session_id] = _SimSession(state="connected", phone=device["phone"])
            self._emit(EngineEventKind.CONNECTED, session_id, phone=device["phone"])
        self._receipts_take_up(session_id)

    def session_stop(self, session_id: str, reason: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
        self._emit(EngineEventKind.DISCONNECTED, session_id, reason=reason, loggedOut=False)

    def session_logout(self, session_id: str, reason: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
            self.state.file_delete(self._device_name(session_id))
        self._emit(EngineEventKind.DISCONNECTED, session_id, reason=reason, loggedOut=True)

    def is_paired(self, session_id: str) -> bool:
        return self._device_load(session_id) is not None

    def active_sessions(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def send_text(self, session_id: str, to: str, text: str, *, wa_id: str) -> SendResult:
        return self.send(session_id, to, Outgoing("text", text=text), wa_id=wa_id)

    def send(self, session_id: str, to: str, outgoing: Outgoing, *, wa_id: str) -> SendResult:
        """Every kind goes into the outbox as the network would carry it (media as its size
        and SHA-256, not its bytes)."""
        active = self._faults_of(session_id)
        self._raise_faults(session_id, active)
        if "rejected" in active:
            raise EngineError("REJECTED", "WhatsApp rejected the message (HTTP 400 bad request)")
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.state != "connected":
                raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp", transient=True)
            connection = session
        if self.connections.holders([session_id])[0] not in (None, self.connection_id):
            self._stream_replaced(session_id)
            raise EngineError("SESSION_NOT_CONNECTED", STREAM_REPLACED_REASON, transient=True)
        if to.endswith("@g.us"):
            if to not in self._groups(session_id):
                raise EngineError("NOT_IN_GROUP", "This session is not in that group")
        elif not number_exists(to):
            raise EngineError("NUMBER_NOT_ON_WHATSAPP", "Number not on WhatsApp")
        if "ack_never_comes" in active:
            self._ack_awaited(session_id, connection, wa_id)
        now = datetime.now(UTC)
        entry = {"id": wa_id, "to": to, **_carried(outgoing), "at": now.isoformat(), "host": self.settings.host_id}
        self._outbox_add(session_id, entry)
        # Also for a message sent before (its send repeated after a crash): its receipts are
        # owed once, whether the first send got as far as keeping them or not.
        delay = timedelta(seconds=self.settings.receipt_seconds)
        receipts = [(wa_id, "delivered", now + delay)]
        if number_reads(to):
            receipts.append((wa_id, "read", now + 2 * delay))
        for receipt_of, status, due in self._receipt_book.add(session_id, receipts):
            self._receipt_later(due, session_id, receipt_of, status)
        return SendResult(wa_id=wa_id, timestamp=now)

    def _ack_awaited(self, session_id: str, connection: _SimSession, wa_id: str) -> None:
        """WhatsApp withholds its ack (the `ack_never_comes` fault): wait until the fault is
        cleared, or fail once the connection it was sent on ended (or the engine stops)."""
        key = (session_id, wa_id)
        with self._lock:
            self._in_flight.add(key)
        try:
            while "ack_never_comes" in self._faults_of(session_id):
                if self._stopping.wait(TICK_SECONDS):
                    raise EngineError(
                        "ENGINE_TIMEOUT", "The engine stopped before WhatsApp acknowledged it", transient=True
                    )
                with self._lock:
                    if self._sessions.get(session_id) is not connection:
                        raise EngineError(
                            "SESSION_NOT_CONNECTED",
                            "The connection ended before WhatsApp acknowledged the message",
                            transient=True,
                        )
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def probe(self, session_id: str) -> bool:
        """A keep-alive: answered unless the connection went deaf. The other faults leave it
        alone: it must not hang the caller (an engine host's heartbeat)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.state != "connected":
                raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp")
            return not session.deaf

    def reconnect(self, session_id: str) -> None:
        """A new connection for a connected (or reconnecting) session: what it missed while
        deaf arrives on it."""
        self._raise_faults(session_id)
        with self._lock:
            current = self._sessions.get(session_id)
            if current is None or current.state not in ("connected", "reconnecting"):
                raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp")
            self._sessions[session_id] = _SimSession(state="connected", phone=current.phone)
            self._reconnecting.discard(session_id)
            missed = self._unheard.pop(session_id, [])
        self._emit(EngineEventKind.RECONNECTING, session_id)
        self.connections.claim(session_id, self.connection_id)
        self._emit(EngineEventKind.CONNECTED, session_id, phone=current.phone)
        for event in missed:
            self.listener(event)

    def carried(self, session_id: str, wa_id: str) -> bool | None:
        """The outbox says: True once carried; None while its ack is awaited; else False."""
        with self._lock:
            if (session_id, wa_id) in self._in_flight:
                return None
        return wa_id in self._sent_of(session_id)

    def pair_code(self, session_id: str, phone: str) -> str:
        self._raise_faults(session_id)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.state != "pending" or session.qr is None:
                raise EngineError("NOT_PAIRING", "This session is not showing a QR code, so it cannot be linked now")
            session.pair_code = "".join(secrets.choice(PAIR_CODE_ALPHABET) for _ in range(8))
            session.pair_phone = phone
            return f"{session.pair_code[:4]}-{session.pair_code[4:]}"

    def check_numbers(self, session_id: str, phones: list[str]) -> dict[str, str | None]:
        self._raise_faults(session_id)
        return {phone: f"{phone}@s.whatsapp.net" if number_exists(phone) else None for phone in phones}

    def shutdown(self) -> None:
        self._stopping.set()
        self._ticker.join(timeout=2)
        with self._lock:
            self._sessions.clear()
        if not self._ticker.is_alive():
            self._receipt_book.close()

    # -- the simulated phone --------------------------------------------------------------

    def pair(self, session_id: str, token: str, phone: str | None = None) -> str:
        """The phone scanned the QR whose URL ends in `token`, or entered the pairing code
        `token`; returns the paired phone."""
        self._raise_faults(session_id)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.state != "pending" or session.qr is None:
                raise EngineError("NOT_PAIRING", "This session is not waiting to be linked")
            code = token.replace("-", "").strip().upper()
            if session.pair_code and secrets.compare_digest(code, session.pair_code):
                phone = session.pair_phone
            elif session.pair_code is not None and len(code) == len(session.pair_code):
                raise EngineError("PAIR_CODE_INVALID", "That is not the code this session gave; check it and try again")
            else:
                expired = datetime.now(UTC) >= session.qr.expires_at
                if expired or not secrets.compare_digest(token, session.qr_token or ""):
                    raise EngineError("QR_EXPIRED", "This QR code has expired; scan the current one")
            phone = phone or simulated_phone(session_id)
            self._device_save(session_id, phone)
            self.connections.claim(session_id, self.connection_id)
            session.state, session.phone, session.qr, session.qr_token = "connected", phone, None, None
            session.pair_code = session.pair_phone = None
        self._emit(EngineEventKind.CONNECTED, session_id, phone=phone)
        self._receipts_take_up(session_id)
        return phone

    # -- groups (kept per session in the shared state: simulator/groups/<session>.json) ----

    def groups_list(self, session_id: str) -> list[dict]:
        me = self._connected_phone(session_id)
        return [self._group_view(group) for group in self._groups(session_id).values() if me in group["participants"]]

    def group_create(self, session_id: str, name: str, participants: list[str]) -> dict:
        me = self._connected_phone(session_id)
        missing = [phone for phone in participants if not number_exists(phone)]
        if missing:
            raise EngineError("NUMBER_NOT_ON_WHATSAPP", f"Not on WhatsApp: {', '.join(missing)}")
        group_id = f"1203630{secrets.randbelow(10**11):011d}@g.us"
        group = {
            "id": group_id,
            "name": name,
            "topic": "",
            "owner": me,
            "createdAt": datetime.now(UTC).isoformat(),
            "participants": {me: "superadmin", **dict.fromkeys((p for p in participants if p != me), "member")},
            "invite": secrets.token_urlsafe(16),
        }
        with self._lock:
            groups = self._groups(session_id)
            groups[group_id] = group
            self._groups_save(session_id, groups)
        return self._group_view(group)

    def group_info(self, session_id: str, group_id: str) -> dict:
        return self._group_view(self._group_of(session_id, group_id))

    def group_participants(self, session_id: str, group_id: str, action: str, phones: list[str]) -> dict[str, str]:
        with self._lock:
            group = self._group_of(session_id, group_id, admin=True)
            members, outcome = group["participants"], {}
            for phone in phones:
                if action == "add":
                    result = (
                        "already a member"
                        if phone in members
                        else ("ok" if number_exists(phone) else "not on WhatsApp")
                    )
                    if result == "ok":
                        members[phone] = "member"
                elif phone not in members:
                    result = "not a member"
                elif members[phone] == "superadmin":
                    result = "the group's creator cannot be changed"
                else:
                    result = "ok"
                    if action == "remove":
                        del members[phone]
                    else:
                        members[phone] = "admin" if action == "promote" else "member"
                outcome[phone] = result
            groups = self._groups(session_id)
            self._groups_save(session_id, groups)
        return outcome

    def group_invite_link(self, session_id: str, group_id: str, *, revoke: bool = False) -> str:
        with self._lock:
            group = self._group_of(session_id, group_id, admin=True)
            if revoke:
                group["invite"] = secrets.token_urlsafe(16)
                self._groups_save(session_id, self._groups(session_id))
        return f"https://chat.whatsapp.com/{group['invite']}"

    def group_leave(self, session_id: str, group_id: str) -> None:
        with self._lock:
            group = self._group_of(session_id, group_id)
            del group["participants"][self._connected_phone(session_id)]
            self._groups_save(session_id, self._groups(session_id))

    def presence_send(self, session_id: str, chat: str | None, state: str) -> None:
        self._connected_phone(session_id)
        if state in PRESENCE_CHAT_STATES:
            if chat is None:
                raise EngineError("REJECTED", f"'{state}' is shown in a chat: say which")
            if chat.endswith("@g.us"):
                self._group_of(session_id, chat)
            elif not number_exists(chat):
                raise EngineError("NUMBER_NOT_ON_WHATSAPP", "Number not on WhatsApp")
        entry = {"state": state, **({"chat": chat} if chat else {}), "at": datetime.now(UTC).isoformat()}
        with self._lock, (self.presence_dir / f"{session_id}.jsonl").open("a") as log_file:
            log_file.write(json.dumps(entry) + "\n")

    def presence_log(self, session_id: str) -> list[dict]:
        """Every presence the session showed, in order."""
        try:
            lines = (self.presence_dir / f"{session_id}.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line]

    def presence_subscribe(self, session_id: str, phone: str) -> None:
        self._connected_phone(session_id)
        if not number_exists(phone):
            raise EngineError("NUMBER_NOT_ON_WHATSAPP", "Number not on WhatsApp")
        self._emit(EngineEventKind.PRESENCE, session_id, **{"from": phone, "state": "online"})

    def _connected_phone(self, session_id: str) -> str:
        self._raise_faults(session_id)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.state != "connected":
                raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp")
            return session.phone

    def _groups(self, session_id: str) -> dict:
        with self._lock:
            groups = self._group_cache.get(session_id)
            if groups is None:
                stored = self.state.file_get(f"simulator/groups/{session_id}.json")
                groups = json.loads(stored) if stored else {}
                self._group_cache[session_id] = groups
            return groups

    def _groups_save(self, session_id: str, groups: dict) -> None:
        self.state.file_put(f"simulator/groups/{session_id}.json", json.dumps(groups).encode())

    def _group_of(self, session_id: str, group_id: str, *, admin: bool = False) -> dict:
        me = self._connected_phone(session_id)
        group = self._groups(session_id).get(group_id)
        if group is None or me not in group["participants"]:
            raise EngineError("GROUP_NOT_FOUND", "This session is not in that group")
        if admin and group["participants"][me] == "member":
            raise EngineError("NOT_GROUP_ADMIN", "Only the group's admins can do that")
        return group

    @staticmethod
    def _group_view(group: dict) -> dict:
        view = {key: group[key] for key in ("id", "name", "topic", "owner", "createdAt")}
        view["participants"] = [{"phone": phone, "role": role} for phone, role in group["participants"].items()]
        return view

    def sync_contacts(self, session_id: str, contacts: list[dict]) -> int:
        """The simulated phone's address book syncs to the session: [{phone, name}]."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.state != "connected":
                raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp")
        self._emit(EngineEventKind.CONTACTS, session_id, contacts=list(contacts))
        return len(contacts)

    def receive(self, session_id: str, sender: str, message: Outgoing | str) -> str:
        """A contact sends the session a message of any kind; returns its WhatsApp message id."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.state != "connected":
                raise EngineError("SESSION_NOT_CONNECTED", "The session is not connected to WhatsApp")
        if isinstance(message, str):
            message = Outgoing("text", text=message)
        details = {key: value for key, value in message.to_record().items() if key not in ("kind", "link_preview")}
        return self._inbound(session_id, sender, message.kind, message.text, details, message.media)

    def _inbound(self, session_id: str, sender: str, kind: str, text: str, details: dict, media=None) -> str:
        wa_id = "SIM" + secrets.token_hex(10).upper()
        self._emit(
            EngineEventKind.MESSAGE,
            session_id,
            waId=wa_id,
            text=text,
            type=kind,
            details=details,
            media=media,
            timestamp=datetime.now(UTC),
            **self._identity(session_id, sender),
        )
        return wa_id

    def _identity(self, session_id: str, phone: str) -> dict:
        """Who a contact is as the network names them: by number, or (fault `sender_as_lid`)
        by LID with the number alongside, as WhatsApp gives it."""
        if "sender_as_lid" in self._faults_of(session_id):
            return {"sender": phone, "phone": phone, "lid": simulated_lid(phone)}
        return {"sender": phone, "phone": phone}

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
        """The simulated phone answers with the chat's older messages (fault
        `history_on_request`: it holds one an hour, from the contact and from the phone by
        turns; in a group, its other members'), HISTORY_BATCH at a time; without the fault
        it has none older."""
        me = self._connected_phone(session_id)
        authors = [chat]
        if chat.endswith("@g.us"):
            authors = [phone for phone in self._group_of(session_id, chat)["participants"] if phone != me]
        before = datetime.fromisoformat(oldest["timestamp"]) if oldest else datetime.now(UTC)
        moments: list[datetime] = []
        if "history_on_request" in self._faults_of(session_id):
            floor = datetime.fromisoformat(since) if since else None
            wanted = min(count or HISTORY_MAX, HISTORY_MAX)
            moment = before - HISTORY_SPACING
            while len(moments) < wanted and (floor is None or moment >= floor):
                moments.append(moment)
                moment -= HISTORY_SPACING
        moments.reverse()  # oldest first, as the phone sends them
        batches = [moments[start : start + HISTORY_BATCH] for start in range(0, len(moments), HISTORY_BATCH)] or [[]]
        received = 0
        for number, batch in enumerate(batches, start=1):
            messages = [self._history_message(session_id, chat, moment, authors) for moment in batch]
            received += len(messages)
            final = number == len(batches)
            self._emit(
                EngineEventKind.HISTORY,
                session_id,
                requestId=request_id,
                chat=chat,
                messages=messages,
                received=received,
                final=final,
            )

    def _history_message(self, session_id: str, chat: str, moment: datetime, authors: list[str]) -> dict:
        hour = int(moment.timestamp() // 3600)
        from_me = hour % 2 == 0 or not authors
        wa_id = "SIMH" + hashlib.sha256(f"{session_id}:{chat}:{moment.isoformat()}".encode()).hexdigest()[:18].upper()
        text = f"Earlier message of {moment:%Y-%m-%d %H:%M} UTC"
        if from_me:
            return {"waId": wa_id, "sender": chat, "text": text, "type": "text", "timestamp": moment, "fromMe": True}
        author = authors[hour // 2 % len(authors)]
        message = {"waId": wa_id, "text": text, "type": "text", "timestamp": moment}
        if chat.endswith("@g.us"):
            message["details"] = {"chat": chat, "isGroup": True}
        return message | self._identity(session_id, author)

    def contact_presence(self, session_id: str, sender: str, state: str, chat: str | None = None) -> None:
        """A contact comes online, goes offline, or types or records in a chat with the session."""
        self._connected_phone(session_id)
        data = {"from": sender, "state": state, **({"chat": chat} if chat else {})}
        if state == "offline":
            data["lastSeen"] = datetime.now(UTC)
        self._emit(EngineEventKind.PRESENCE, session_id, **data)

    def vote(self, session_id: str, sender: str, poll_wa_id: str, options: list[str]) -> str:
        """A contact votes on one of the session's polls (no options takes the vote back)."""
        self._connected_phone(session_id)
        vote = {"pollVote": {"messageWaId": poll_wa_id, "options": list(options)}}
        return self._inbound(session_id, sender, "poll_vote", "", vote)

    def outbox(self, session_id: str) -> list[dict]:
        """Every message the simulated network accepted from this session, in order."""
        try:
            lines = self._outbox_path(session_id).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line]

    # -- internals ------------------------------------------------------------------------

    def _outbox_path(self, session_id: str) -> Path:
        return self.outbox_dir / f"{session_id}.jsonl"

    def _sent_of(self, session_id: str) -> set[str]:
        """The ids of every message the session's outbox holds (read once, then kept)."""
        with self._lock:
            sent = self._sent_ids.get(session_id)
            if sent is None:
                sent = self._sent_ids[session_id] = {item["id"] for item in self.outbox(session_id)}
            return sent

    def _outbox_add(self, session_id: str, entry: dict) -> bool:
        """Record a sent message once; False if its id was sent before (even before a restart)."""
        with self._lock:
            sent = self._sent_of(session_id)
            if entry["id"] in sent:
                return False
            with self._outbox_path(session_id).open("a") as outbox:
                outbox.write(json.dumps(entry) + "\n")
            sent.add(entry["id"])
            return True

    def _receipt_later(self, due: datetime, session_id: str, wa_id: str, status: str) -> None:
        with self._lock:
            self._timer_seq += 1
            heapq.heappush(self._receipts, (due, self._timer_seq, session_id, wa_id, status))

    def _receipts_take_up(self, session_id: str) -> None:
        """A session comes back: the receipts it is still owed follow (once per engine: those
        of its sends since are scheduled already)."""
        with self._lock:
            if session_id in self._receipts_owed:
                return
            self._receipts_owed.add(session_id)
        for wa_id, status, due in self._receipt_book.owed(session_id):
            self._receipt_later(due, session_id, wa_id, status)

    def _receipts_due(self, now: datetime) -> list[tuple[str, str, str]]:
        due = []
        with self._lock:
            while self._receipts and self._receipts[0][0] <= now:
                _, _, session_id, wa_id, status = heapq.heappop(self._receipts)
                due.append((session_id, wa_id, status))
        return due

    def _faults_of(self, session_id: str, switched: Mapping[str, AbstractSet[str]] | None = None) -> set[str]:
        """The faults in force for a session: its own and those switched on for all."""
        switched = self.faults() if switched is None else switched
        return {*switched.get(ALL_SESSIONS, ()), *switched.get(session_id, ())}

    def _raise_faults(self, session_id: str, active: set[str] | None = None) -> None:
        active = self._faults_of(session_id) if active is None else active
        if "timeout" in active:
            self._stopping.wait(self.settings.timeout_seconds)
            raise EngineError("ENGINE_TIMEOUT", "Timed out waiting for WhatsApp", transient=True)
        if "unreachable" in active:
            raise EngineError("UNREACHABLE", "Could not reach WhatsApp (network unreachable)", transient=True)
        if "upstream_error" in active:
            raise EngineError("UPSTREAM_ERROR", "WhatsApp server error (HTTP 500)", transient=True)
        if "auth_error" in active:
            raise EngineError("UPSTREAM_AUTH", "WhatsApp refused the session's credentials (HTTP 401)", transient=True)
        if "overload" in active:
            raise EngineError("OVERLOADED", "WhatsApp is overloaded (rate-overlimit)", transient=True)

    def _next_qr(self, session_id: str, session: _SimSession) -> None:
        session.qr_token = secrets.token_urlsafe(24)
        session.qr_count += 1
        session.qr = QrCode(
            payload=f"{self.settings.public_url}/sim/pair/{session_id}/{session.qr_token}",
            expires_at=datetime.now(UTC) + timedelta(seconds=self.settings.qr_refresh_seconds),
            number=session.qr_count,
        )
        with self._lock:
            self._timer_seq += 1
            heapq.heappush(self._qr_expiries, (session.qr.expires_at, self._timer_seq, session_id))
        if session.pair_code is None:  # a phone is entering a code: the QR is not shown any more
            self._emit_qr(session_id, session)

    def _emit_qr(self, session_id: str, session: _SimSession) -> None:
        qr = session.qr
        self._emit(EngineEventKind.QR, session_id, payload=qr.payload, expiresAt=qr.expires_at, number=qr.number)

    def _tick_forever(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            try:
                self._tick()
            except Exception:  # the ticker must outlive any single bad tick
                log.exception("simulator tick failed")

    def _tick(self) -> None:
        now = datetime.now(UTC)
        due = self._receipts_due(now)
        for session_id, wa_id, status in due:
            self._emit(EngineEventKind.RECEIPT, session_id, waId=wa_id, status=status, timestamp=now)
        self._receipt_book.reported(due)
        self._qr_codes_expire(now)
        switched = self.faults()
        self._disconnects_follow(switched)
        self._deafness_follow(switched)
        self._replacements_follow()

    def _deafness_follow(self, switched: Mapping[str, AbstractSet[str]]) -> None:
        """Connected sessions a `deaf` fault names go deaf, once per switch-on (a reconnected
        session hears again though the switch is still on)."""
        named = [scope for scope, faults in switched.items() if "deaf" in faults]
        with self._lock:
            candidates = set(self._sessions) if ALL_SESSIONS in named else set(named)
            self._deafened &= candidates  # a switch turned off: the next one deafens again
            for session_id in candidates - self._deafened:
                session = self._sessions.get(session_id)
                if session is not None and session.state == "connected":
                    session.deaf = True
                    self._deafened.add(session_id)

    def _replacements_follow(self) -> None:
        """Sessions whose device another connection claimed since the last look are replaced.
        The holders are read only when the count of claims moved."""
        claims = self.connections.claims()
        if claims == self._claims_seen:
            return
        self._claims_seen = claims
        with self._lock:
            held = list(self._sessions)
        if not held:
            return
        for session_id, holder in zip(held, self.connections.holders(held), strict=True):
            if holder not in (None, self.connection_id):
                self._stream_replaced(session_id)

    def _stream_replaced(self, session_id: str) -> None:
        """Another connection took the session's device over: this one ends, as WhatsApp
        ends the older stream (reported once, with the signal the real engine gives)."""
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                return
            self._reconnecting.discard(session_id)
        self._emit(EngineEventKind.ERROR, session_id, reason=STREAM_REPLACED_REASON, signal="stream_replaced")

    def _qr_codes_expire(self, now: datetime) -> None:
        """A pending session whose QR code expired shows the next one, or gives up."""
        with self._lock:
            while self._qr_expiries and self._qr_expiries[0][0] <= now:
                _, _, session_id = heapq.heappop(self._qr_expiries)
                session = self._sessions.get(session_id)
                if session is None or session.state != "pending" or session.qr is None or session.qr.expires_at > now:
                    continue  # paired, stopped or showing a newer code since
                if session.qr_count > self.settings.qr_max_refreshes:
                    self._sessions.pop(session_id, None)
                    self._emit(EngineEventKind.DISCONNECTED, session_id, reason=QR_EXPIRED_REASON, loggedOut=False)
                else:
                    self._next_qr(session_id, session)

    def _disconnects_follow(self, switched: Mapping[str, AbstractSet[str]]) -> None:
        """Connected sessions a `disconnect` fault names drop to reconnecting; reconnecting
        ones it no longer names connect again. Only those sessions are looked at."""
        named = [scope for scope, faults in switched.items() if "disconnect" in faults]
        with self._lock:
            candidates = self._sessions if ALL_SESSIONS in named else named
            dropping = [
                (session_id, session)
                for session_id in candidates
                if (session := self._sessions.get(session_id)) is not None and session.state == "connected"
            ]
            returning = [
                (session_id, session)
                for session_id in self._reconnecting
                if (session := self._sessions.get(session_id)) is not None and session.state == "reconnecting"
            ]
            self._reconnecting = {session_id for session_id, _ in returning}
        for session_id, session in dropping:
            session.state = "reconnecting"
            self._reconnecting.add(session_id)
            self._emit(EngineEventKind.RECONNECTING, session_id)
        for session_id, session in returning:
            if "disconnect" not in self._faults_of(session_id, switched):
                session.state = "connected"
                self._reconnecting.discard(session_id)
                self._emit(EngineEventKind.CONNECTED, session_id, phone=session.phone)

    def _emit(self, kind: EngineEventKind, session_id: str, **data) -> None:
        event = EngineEvent(kind=kind, session_id=session_id, data=data)
        if kind in UNHEARD_KINDS:
            with self._lock:
                session = self._sessions.get(session_id)
                if session is not None and session.deaf:  # WhatsApp keeps it for the next connection
                    self._unheard.setdefault(session_id, []).append(event)
                    return
        self.listener(event)

    @staticmethod
    def _device_name(session_id: str) -> str:
        return f"simulator/{session_id}.json"

    def _device_load(self, session_id: str) -> dict | None:
        stored = self.state.file_get(self._device_name(session_id))
        return json.loads(stored) if stored else None

    def _device_save(self, session_id: str, phone: str) -> None:
        device = {"phone": phone, "pairedAt": datetime.now(UTC).isoformat()}
        self.state.file_put(self._device_name(session_id), json.dumps(device).encode())


def _carried(outgoing: Outgoing) -> dict:
    """What the network carries of a message: its kind and details, media as a fingerprint."""
    record = {key: value for key, value in outgoing.to_record().items() if not key.startswith("quoted")}
    record["text"] = outgoing.text
    if outgoing.media is not None:
        record["media"] = {
            "mimetype": outgoing.mimetype,
            "size": len(outgoing.media),
            "sha256": hashlib.sha256(outgoing.media).hexdigest(),
            **({"filename": outgoing.filename} if outgoing.filename else {}),
        }
        record.pop("mimetype", None)
        record.pop("filename", None)
    if outgoing.quoted_wa_id:
        quoted = {"id": outgoing.quoted_wa_id, "from_me": outgoing.quoted_from_me, "text": outgoing.quoted_text}
        record["quoted"] = quoted
    return record
