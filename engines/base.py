"""The interface every WhatsApp engine implements, and the events engines report.

Engines know nothing of Flask or the database. The engine host hands each engine a
listener; the engine reports everything that happens through it, from any thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from engines.outgoing import Outgoing

# What a session can show its contacts: in one chat (typing, recording a voice note, stopped),
# or to everyone (online, offline).
PRESENCE_CHAT_STATES = ("typing", "recording", "paused")
PRESENCE_STATES = (*PRESENCE_CHAT_STATES, "available", "unavailable")
# What a contact's presence can be, as engines report it.
PRESENCE_SEEN = ("online", "offline", "typing", "recording", "paused")

# Why a session whose QR codes all expired unscanned went offline (every engine says the same).
QR_EXPIRED_REASON = "QR code expired: it was not scanned in time. Connect again for a new one."
# Why a session stopped when WhatsApp let another connection of the same device take over.
STREAM_REPLACED_REASON = (
    "This WhatsApp account was opened by another wagate session or server (stream replaced). "
    "Connect again here to take it back."
)


class EngineEventKind(StrEnum):
    QR = "qr"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"  # reason, loggedOut; `signal: logged_out` when the phone unlinked it
    ERROR = "error"  # reason; `signal` (temporary_ban, stream_replaced) when WhatsApp warned about the number
    MESSAGE = "message"  # inbound: waId, sender, text, timestamp; phone and lid when known
    RECEIPT = "receipt"  # waId, status (delivered | read | played), timestamp
    CONTACTS = "contacts"  # contacts: [{phone, name}], the linked phone's address book
    PRESENCE = "presence"  # from, state (PRESENCE_SEEN), chat (typing in a group), lastSeen
    # One batch of older messages from the phone's history: requestId (None when WhatsApp
    # pushed it unasked), chat, messages [MESSAGE data + fromMe], received (so far), final
    HISTORY = "history"


@dataclass(frozen=True)
class EngineEvent:
    kind: EngineEventKind
    session_id: str
    data: dict = field(default_factory=dict)


EngineListener = Callable[[EngineEvent], None]


class EngineError(Exception):
    """A failure an engine reports to its caller; `transient` ones are worth a retry.

    Every engine reports the same codes, since the services decide refunds and answers by
    them: ENGINE_TIMEOUT, UNREACHABLE, UPSTREAM_ERROR, UPSTREAM_AUTH and OVERLOADED are
    WhatsApp's side (transient); NUMBER_NOT_ON_WHATSAPP, REJECTED and SESSION_NOT_CONNECTED
    are the sender's.
    """

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class EngineSettings:
    data_dir: Path
    public_url: str
    qr_refresh_seconds: float = 60.0
    qr_max_refreshes: int = 5
    timeout_seconds: float = 10.0
    receipt_seconds: float = 1.0
    host_id: str = ""  # the engine host running the engine (the simulator's outbox names it)


@dataclass(frozen=True)
class QrCode:
    payload: str
    expires_at: datetime
    number: int


@dataclass(frozen=True)
class SendResult:
    wa_id: str
    timestamp: datetime


class Engine(ABC):
    """One engine instance serves all the sessions of one engine host."""

    name: str

    def __init__(self, listener: EngineListener, settings: EngineSettings) -> None:
        self.listener = listener
        self.settings = settings

    @abstractmethod
    def session_start(self, session_id: str) -> None:
        """Bring a session online: reconnect a paired device, or start pairing (QR events)."""

    @abstractmethod
    def session_stop(self, session_id: str, reason: str) -> None:
        """Drop the connection and keep the pairing."""

    @abstractmethod
    def session_logout(self, session_id: str, reason: str) -> None:
        """Unlink the device and forget its credentials."""

    @abstractmethod
    def is_paired(self, session_id: str) -> bool:
        """Whether a linked device is stored for this session."""

    @abstractmethod
    def active_sessions(self) -> list[str]:
        """The sessions this engine currently holds."""

    @abstractmethod
    def send_text(self, session_id: str, to: str, text: str, *, wa_id: str) -> SendResult:
        """Send a text to a phone number (digits with country code) under a chosen message id.

        Sending again with the same `wa_id` must not deliver a second message. Raises
        EngineError: `transient` for failures worth retrying, not for a bad recipient.
        """

    def send(self, session_id: str, to: str, outgoing: Outgoing, *, wa_id: str) -> SendResult:
        """Send a message of any kind (engines/outgoing.py) under the id `wa_id`.

        Engines that know more kinds than text override this; the rest refuse them.
        """
        if outgoing.kind == "text":
            return self.send_text(session_id, to, outgoing.text, wa_id=wa_id)
        raise EngineError("REJECTED", f"The {self.name} engine cannot send {outgoing.kind} messages")

    @abstractmethod
    def pair_code(self, session_id: str, phone: str) -> str:
        """Link a session that is showing QR codes by phone number instead: returns the code
        (`ABCD-EFGH`) to enter on that phone under Linked devices → Link with phone number.

        Raises EngineError NOT_PAIRING when the session is not waiting to be linked.
        """

    @abstractmethod
    def check_numbers(self, session_id: str, phones: list[str]) -> dict[str, str | None]:
        """For each phone number (digits with country code): its WhatsApp id ("<digits>@s.whatsapp.net",
        as WhatsApp files it), or None when it is not on WhatsApp."""

    # -- groups: dicts {id, name, topic, owner, createdAt, participants: [{phone, role}]} --
    # role is member, admin or superadmin. Engines without groups refuse with REJECTED.

    def groups_list(self, session_id: str) -> list[dict]:
        raise EngineError("REJECTED", f"The {self.name} engine has no groups")

    def group_create(self, session_id: str, name: str, participants: list[str]) -> dict:
        raise EngineError("REJECTED", f"The {self.name} engine has no groups")

    def group_info(self, session_id: str, group_id: str) -> dict:
        raise EngineError("REJECTED", f"The {self.name} engine has no groups")

    def group_participants(self, session_id: str, group_id: str, action: str, phones: list[str]) -> dict[str, str]:
        """add, remove, promote or demote: each phone's outcome ("ok" or why not)."""
        raise EngineError("REJECTED", f"The {self.name} engine has no groups")

    def group_invite_link(self, session_id: str, group_id: str, *, revoke: bool = False) -> str:
        raise EngineError("REJECTED", f"The {self.name} engine has no groups")

    def group_leave(self, session_id: str, group_id: str) -> None:
        raise EngineError("REJECTED", f"The {self.name} engine has no groups")

    # -- presence ------------------------------------------------------------------------

    def presence_send(self, session_id: str, chat: str | None, state: str) -> None:
        """Show `state` (PRESENCE_STATES): typing/recording/paused in `chat` (a phone or a
        group id), or available/unavailable to everyone (chat None)."""
        raise EngineError("REJECTED", f"The {self.name} engine cannot show presence")

    def presence_subscribe(self, session_id: str, phone: str) -> None:
        """Ask WhatsApp for a contact's online/offline updates (PRESENCE events follow)."""
        raise EngineError("REJECTED", f"The {self.name} engine cannot follow presence")

    # -- liveness (roles/session_watch.py) ------------------------------------------------

    def probe(self, session_id: str) -> bool:
        """A cheap check that a connected session's connection still carries what WhatsApp
        sends (keep-alives answered): False when it went deaf. EngineError when the session
        is not connected, or the engine has no such check (REJECTED)."""
        raise EngineError("REJECTED", f"The {self.name} engine has no liveness check")

    def reconnect(self, session_id: str) -> None:
        """Drop a held session's connection and connect again at once, keeping its pairing
        and its place on this engine (RECONNECTING, then CONNECTED: no DISCONNECTED)."""
        raise EngineError("REJECTED", f"The {self.name} engine cannot reconnect a session on request")

    def carried(self, session_id: str, wa_id: str) -> bool | None:
        """Whether WhatsApp has the message sent under `wa_id`: True (it acknowledged it),
        False (no attempt went out and none is under way: sending it cannot deliver it twice),
        None (cannot tell: an attempt is under way, or one was never confirmed)."""
        return None

    # -- history ---------------------------------------------------------------------------

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
        """Ask the phone for a chat's older messages: the `count` before the `oldest` one the
        session has ({waId, fromMe, timestamp}), or all since `since` (ISO 8601). They come
        as HISTORY events carrying `request_id`, in batches, the last one `final`."""
        raise EngineError("REJECTED", f"The {self.name} engine cannot fetch history")

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every session without unlinking (the process is going away)."""
