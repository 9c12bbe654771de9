"""A stand-in for neonize's Go library, at the boundary where neonize calls it.

neonize's Python code (NewClient, its message builders, its event dispatch) runs for
real; only the exported Go functions are replaced. `Neonize` (what `connect()` calls)
blocks until `Stop`, as the real one does, and keeps the ctypes callbacks neonize passed,
so a test can play WhatsApp: show QR codes, report pairing outcomes, and send events as
serialized protobufs through neonize's own dispatch.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from dataclasses import dataclass, field

from neonize.events import EVENT_TO_INT
from neonize.proto import Neonize_pb2 as go
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message, PollCreationMessage, PollVoteMessage, ReactionMessage


def filled(message):
    """The event with every proto2 `required` field set, as Go's encoder sends them."""
    for descriptor in message.DESCRIPTOR.fields:
        if descriptor.message_type is not None:
            if descriptor.is_repeated:
                for item in getattr(message, descriptor.name):
                    filled(item)
            elif message.HasField(descriptor.name) or descriptor.is_required:
                filled(getattr(message, descriptor.name))
                getattr(message, descriptor.name).SetInParent()
        elif descriptor.is_required and not message.HasField(descriptor.name):
            setattr(message, descriptor.name, descriptor.default_value)
    return message


@dataclass
class Connection:
    """One `Neonize` call: a client's connect(), until Stop."""

    name: str
    qr: object
    login_status: object
    event: object
    stopped: threading.Event = field(default_factory=threading.Event)


@dataclass
class Sent:
    to: go.JID
    message: Message


class FakeGo:
    def __init__(self) -> None:
        self.connections: dict[str, list[Connection]] = {}
        self.connected = threading.Condition()
        self.logged_in: set[str] = set()
        self.sent: list[Sent] = []
        self.uploads: list[tuple[bytes, int]] = []
        self.me: dict[str, str] = {}  # each logged-in client's own number
        self.downloads: dict[str, bytes] = {}  # media WhatsApp's servers hold, by direct path
        self.groups: list[go.GroupInfo] = []  # the groups the client is in
        self.contacts: list = []  # the address book (neonize Contact protos)
        self.checked: list[str] = []
        self.pair_requests: list[go.PairPhoneParams] = []
        self.stops: list[str] = []
        self.send_error = ""
        self.connect_error = ""  # what Neonize returns at once, as when the dial fails
        self.lid_map: dict[str, str] = {}
        self.presences: list[tuple] = []  # what the client showed: (chat JID or None, state, media)
        self.subscribed: list[go.JID] = []
        self.votes: dict[str, list[bytes]] = {}  # decrypted votes by message id: the options' SHA-256
        self._ids = itertools.count(1)

    # -- what a test does as WhatsApp -----------------------------------------------------

    def connection(self, uuid: str, number: int = 1, timeout: float = 5.0) -> Connection:
        """The session's `number`th connect, once it has happened."""
        with self.connected:
            if not self.connected.wait_for(lambda: len(self.connections.get(uuid, [])) >= number, timeout):
                raise AssertionError(f"session {uuid} did not connect {number} time(s) within {timeout}s")
            return self.connections[uuid][number - 1]

    def connect_count(self, uuid: str) -> int:
        with self.connected:
            return len(self.connections.get(uuid, []))

    def show_qr(self, uuid: str, code: str) -> None:
        buffer = ctypes.create_string_buffer(code.encode())
        self.connection(uuid).qr(uuid.encode(), ctypes.addressof(buffer))

    def pairing_ends(self, uuid: str, status: str) -> None:
        buffer = ctypes.create_string_buffer(status.encode())
        self.connection(uuid).login_status(uuid.encode(), ctypes.addressof(buffer))

    def emit(self, uuid: str, event, *, connection: int | None = None) -> None:
        """What Go's event loop does: the serialized event through neonize's callback."""
        if isinstance(event, go.Connected):
            self.logged_in.add(uuid)
        elif isinstance(event, go.LoggedOut | go.StreamReplaced | go.Disconnected):
            self.logged_in.discard(uuid)
        data = filled(event).SerializeToString()
        buffer = ctypes.create_string_buffer(data, len(data) or 1)
        connections = self.connections[uuid]
        target = connections[-1] if connection is None else connections[connection - 1]
        target.event(uuid.encode(), ctypes.addressof(buffer), len(data), EVENT_TO_INT[type(event)])

    def log_in(self, uuid: str, phone: str) -> None:
        """A stored device comes online: Go reports the device, then Connected."""
        self.me[uuid] = phone
        self.emit(uuid, go.Device(JID=go.JID(User=phone, Server="s.whatsapp.net", Device=12)))
        self.emit(uuid, go.Connected(status=True))

    # -- the exported Go functions neonize calls ------------------------------------------

    def Neonize(self, name, uuid, jid, jid_size, new_device, log_level, qr, login, event, log, *rest):
        key = uuid.decode()
        if self.connect_error:
            return self.connect_error.encode()
        connection = Connection(name.decode(), qr, login, event)
        with self.connected:
            self.connections.setdefault(key, []).append(connection)
            self.connected.notify_all()
        connection.stopped.wait()
        return b""

    def Stop(self, uuid) -> None:
        key = uuid.decode()
        self.stops.append(key)
        self.logged_in.discard(key)
        with self.connected:
            for connection in self.connections.get(key, []):
                connection.stopped.set()

    def IsLoggedIn(self, uuid) -> bool:
        return uuid.decode() in self.logged_in

    def IsConnected(self, uuid) -> bool:
        return uuid.decode() in self.logged_in

    def IsOnWhatsApp(self, uuid, numbers, *size) -> bytes:
        responses = []
        for query in numbers.decode().split(" "):
            self.checked.append(query)
            digits = query.lstrip("+")
            found = not digits.endswith("0000")
            jid = go.JID(User=digits if found else "", Server="s.whatsapp.net")
            responses.append(go.IsOnWhatsAppResponse(Query=query, JID=jid, IsIn=found))
        return filled(go.IsOnWhatsAppReturnFunction(IsOnWhatsAppResponse=responses)).SerializeToString()

    def SendMessage(self, uuid, to, to_size, message, message_size) -> bytes:
        if self.send_error:
            return filled(go.SendMessageReturnFunction(Error=self.send_error)).SerializeToString()
        self.sent.append(Sent(go.JID.FromString(to), Message.FromString(message)))
        response = go.SendResponse(ID=f"3EB0{next(self._ids):018X}", Timestamp=1_700_000_000)
        return filled(go.SendMessageReturnFunction(SendResponse=response)).SerializeToString()

    def BuildReaction(self, uuid, chat, chat_size, sender, sender_size, message_id, reaction) -> bytes:
        """As whatsmeow's BuildReaction: a reaction keyed to the chat, the message and whether it is ours."""
        chat_jid, sender_jid = go.JID.FromString(chat[:chat_size]), go.JID.FromString(sender[:sender_size])
        me = self.me.get(uuid.decode() if isinstance(uuid, bytes) else uuid)
        key = MessageKey(
            remoteJID=f"{chat_jid.User}@{chat_jid.Server}",
            fromMe=me is not None and sender_jid.User == me,
            ID=message_id.decode(),
        )
        message = Message(reactionMessage=ReactionMessage(key=key, text=reaction.decode(), senderTimestampMS=1))
        return filled(go.BuildMessageReturnFunction(Message=message)).SerializeToString()

    def BuildPollVoteCreation(self, uuid, name, options, size, selectable) -> bytes:
        """As whatsmeow's BuildPollCreation: the question, its options, how many a voter picks."""
        names = go.ArrayString.FromString(options[:size]).data
        poll = PollCreationMessage(
            name=name.decode(),
            options=[PollCreationMessage.Option(optionName=option) for option in names],
            selectableOptionsCount=selectable,
        )
        return filled(go.BuildMessageReturnFunction(Message=Message(pollCreationMessage=poll))).SerializeToString()

    def GetAllContacts(self, uuid) -> bytes:
        """The linked phone's address book: `contacts`."""
        reply = go.ContactsGetAllContactsReturnFunction(Contact=self.contacts)
        return filled(reply).SerializeToString()

    def GetJoinedGroups(self, uuid) -> bytes:
        """The groups WhatsApp says the client is in: `groups`."""
        return filled(go.GetJoinedGroupsReturnFunction(Group=self.groups)).SerializeToString()

    def DownloadAny(self, uuid, message, size) -> bytes:
        """What WhatsApp's media server holds for the message: `downloads` by direct path."""
        content = Message.FromString(message[:size])
        media = next(value for _, value in content.ListFields() if hasattr(value, "directPath"))
        return filled(go.DownloadReturnFunction(Binary=self.downloads[media.directPath])).SerializeToString()

    def Upload(self, uuid, data, size, media_type) -> bytes:
        self.uploads.append((bytes(data[:size]), media_type))
        number = len(self.uploads)
        response = go.UploadResponse(
            url=f"https://mmg.whatsapp.net/upload/{number}",
            DirectPath=f"/v/t62/{number}",
            MediaKey=b"k" * 32,
            FileEncSHA256=b"e" * 32,
            FileSHA256=b"s" * 32,
            FileLength=size,
        )
        return filled(go.UploadReturnFunction(UploadResponse=response)).SerializeToString()

    def PairPhone(self, uuid, params, size) -> bytes:
        self.pair_requests.append(go.PairPhoneParams.FromString(params[:size]))
        return filled(go.PairPhoneReturnFunction(Code="ABCD-EFGH")).SerializeToString()

    def GetPNFromLID(self, uuid, jid, size) -> bytes:
        connections = self.connections.get(uuid.decode(), [])
        # The real one dereferences the client unchecked: on a stopped one the process ends.
        assert connections and not connections[-1].stopped.is_set(), "GetPNFromLID on a stopped client"
        lid = go.JID.FromString(jid[:size])
        phone = self.lid_map.get(lid.User)
        if phone is None:
            return filled(go.GetJIDFromStoreReturnFunction(Jid=go.JID())).SerializeToString()
        return filled(
            go.GetJIDFromStoreReturnFunction(Jid=go.JID(User=phone, Server="s.whatsapp.net"))
        ).SerializeToString()

    def SendChatPresence(self, uuid, jid, size, state, media) -> bytes:
        self.presences.append((go.JID.FromString(jid[:size]), state, media))
        return b""

    def SendPresence(self, uuid, presence) -> bytes:
        self.presences.append((None, presence, None))
        return b""

    def SubscribePresence(self, uuid, jid, size) -> bytes:
        self.subscribed.append(go.JID.FromString(jid[:size]))
        return b""

    def DecryptPollVote(self, uuid, message, size) -> bytes:
        """The vote inside a poll update, decrypted: `votes` by the update's message id."""
        event = go.Message.FromString(message[:size])
        chosen = self.votes.get(event.Info.ID)
        if chosen is None:
            return filled(go.ReturnFunctionWithError(Error="failed to decrypt vote")).SerializeToString()
        vote = PollVoteMessage(selectedOptions=chosen)
        return filled(go.ReturnFunctionWithError(PollVoteMessage=vote)).SerializeToString()

    def Logout(self, uuid) -> bytes:
        self.logged_in.discard(uuid.decode())
        return b""
