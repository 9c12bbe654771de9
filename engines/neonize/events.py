"""What neonize's events (whatsmeow's, as protobuf) mean in wagate's terms.

Pure functions of the event objects, so they can be fed neonize's own protobufs in tests.
The engine decides what to do with a session; these only read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from neonize.proto.Neonize_pb2 import (
    JID,
    ChatPresence,
    ConnectFailure,
    ConnectFailureReason,
    LoggedOut,
    Message,
    Presence,
    Receipt,
    TemporaryBan,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as Content
from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import HistorySync

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
GROUP_SERVER = "g.us"
STATUS_CHAT = "status@broadcast"
# Envelopes whose `.message` carries the real content.
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)
# Fields that ride along with content but are not content themselves.
NOT_CONTENT = frozenset(
    {"senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage", "messageContextInfo"}
)
KINDS = {
    "conversation": "text",
    "extendedTextMessage": "text",
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
    "lottieStickerMessage": "sticker",
    "locationMessage": "location",
    "liveLocationMessage": "location",
    "contactMessage": "contact",
    "contactsArrayMessage": "contact",
    "pollCreationMessage": "poll",
    "pollCreationMessageV2": "poll",
    "pollCreationMessageV3": "poll",
    "pollUpdateMessage": "poll_vote",
    "reactionMessage": "reaction",
    "buttonsResponseMessage": "button_reply",
    "templateButtonReplyMessage": "button_reply",
    "listResponseMessage": "list_reply",
    "interactiveResponseMessage": "button_reply",
    "groupInviteMessage": "group_invite",
}
# Updates to earlier messages and key exchanges: nothing for the owner to read.
SILENT_KINDS = frozenset({"protocolMessage", "keepInChatMessage", "pinInChatMessage", "encReactionMessage"})
RECEIPT_STATUSES = {Receipt.DELIVERED: "delivered", Receipt.READ: "read", Receipt.PLAYED: "played"}
TEMPORARY_BAN_CAUSES = {
    TemporaryBan.SEND_TO_TOO_MANY_PEOPLE: "it sent to too many people",
    TemporaryBan.BLOCKED_BY_USERS: "too many people blocked it",
    TemporaryBan.CREATED_TOO_MANY_GROUPS: "it created too many groups",
    TemporaryBan.SENT_TOO_MANY_SAME_MESSAGE: "it sent the same message too many times",
    TemporaryBan.BROADCAST_LIST: "of its broadcast lists",
}
LOGOUT_CAUSES = {
    ConnectFailureReason.LOGGED_OUT: "the device was unlinked from the phone",
    ConnectFailureReason.MAIN_DEVICE_GONE: "the phone's WhatsApp account is gone (reinstalled or deleted)",
    ConnectFailureReason.UNKNOWN_LOGOUT: "WhatsApp ended the link",
}

# Resolves a LID JID to the phone-number JID WhatsApp knows for it, or None.
LidResolver = Callable[[JID], JID | None]


def epoch_datetime(value: int) -> datetime:
    """A Unix time from neonize, which sends seconds, milliseconds or nanoseconds by event."""
    if value > 10**17:
        value /= 10**9
    elif value > 10**11:
        value /= 10**3
    return datetime.fromtimestamp(value, UTC) if value > 0 else datetime.now(UTC)


def jid_string(jid: JID) -> str:
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def phone_of(jid: JID) -> str | None:
    """The phone number of a phone-number JID (device part dropped); None for anything else."""
    if jid.Server != USER_SERVER or not jid.User:
        return None
    return jid.User.split(":", 1)[0].split(".", 1)[0]


def content_of(message: Content) -> tuple[str, object] | None:
    """The message's content field, unwrapped: (field name, value), or None if there is none."""
    for _ in range(3):  # an ephemeral view-once message is wrapped twice
        for wrapper in WRAPPERS:
            if message.HasField(wrapper) and getattr(message, wrapper).HasField("message"):
                message = getattr(message, wrapper).message
                break
        else:
            break
    for field, value in message.ListFields():
        if field.name not in NOT_CONTENT:
            return field.name, value
    return None


def content_kind(field: str) -> str:
    return KINDS.get(field, "unknown")


def content_text(field: str, value) -> str:
    """What the owner reads in the message log: the text, a caption, or what the message is."""
    if field == "conversation":
        return value
    if field == "extendedTextMessage":
        return value.text
    caption = getattr(value, "caption", "")
    kind = content_kind(field)
    if kind in ("image", "video") and caption:
        return caption
    if kind == "document":
        name = value.fileName or value.title or "document"
        return f"{caption}\n[document: {name}]" if caption else f"[document: {name}]"
    if kind == "audio":
        return "[voice note]" if value.PTT else "[audio]"
    if kind == "location":
        where = f"{value.degreesLatitude:.6f}, {value.degreesLongitude:.6f}"
        name = getattr(value, "name", "") or getattr(value, "address", "")
        return f"[location: {where}{f' ({name})' if name else ''}]"
    if field == "contactMessage":
        return f"[contact: {value.displayName}]"
    if field == "contactsArrayMessage":
        return f"[contacts: {', '.join(contact.displayName for contact in value.contacts)}]"
    if kind == "poll":
        return f"[poll: {value.name}]"
    if kind == "reaction":
        return f"[reaction: {value.text}]" if value.text else "[reaction removed]"
    if field == "buttonsResponseMessage":
        return value.selectedDisplayText
    if field == "templateButtonReplyMessage":
        return value.selectedDisplayText
    if field == "listResponseMessage":
        return value.title
    return f"[{kind}]"


@dataclass(frozen=True)
class Sender:
    phone: str  # digits; a LID's digits when WhatsApp gave no phone number
    is_lid: bool
    lid: str | None = None  # "<digits>@lid", when WhatsApp named them by it or beside their number

    def identity(self) -> dict:
        """The MESSAGE data naming them: `sender`, and `phone` and `lid` when known."""
        known = {"sender": self.phone}
        if not self.is_lid:
            known["phone"] = self.phone
        if self.lid:
            known["lid"] = self.lid
        return known


def lid_of(jid: JID) -> str | None:
    """A LID JID as "<digits>@lid" (device part dropped); None for anything else."""
    if jid.Server != LID_SERVER or not jid.User:
        return None
    return jid.User.split(":", 1)[0] + "@" + LID_SERVER


def sender_of(event: Message, resolve_lid: LidResolver) -> Sender:
    """The phone number that wrote: WhatsApp increasingly names senders by LID (a hidden id),
    with the phone number alongside (SenderAlt) or in the device store's LID map. A sender
    named by number may have their LID alongside."""
    source = event.Info.MessageSource
    sender = source.Sender
    if sender.Server == LID_SERVER:
        alternative = source.SenderAlt
        phone = phone_of(alternative) or phone_of(resolve_lid(sender) or JID())
        if phone:
            return Sender(phone, False, lid_of(sender))
        return Sender(sender.User.split(":", 1)[0], True, lid_of(sender))
    return Sender(phone_of(sender) or sender.User, False, lid_of(source.SenderAlt))


def inbound_message(event: Message, resolve_lid: LidResolver) -> dict | None:
    """The MESSAGE event data for a contact's message; None for what is not one (our own
    messages, status updates, edits and deletions, key exchanges)."""
    info = event.Info
    source = info.MessageSource
    if source.IsFromMe or jid_string(source.Chat) == STATUS_CHAT or source.Chat.Server == "newsletter":
        return None
    content = content_of(event.Message)
    if content is None or content[0] in SILENT_KINDS:
        return None
    field, value = content
    sender = sender_of(event, resolve_lid)
    data = {
        "waId": info.ID,
        **sender.identity(),
        "text": content_text(field, value),
        "timestamp": epoch_datetime(info.Timestamp),
        "type": content_kind(field),
        "chat": jid_string(source.Chat),
        "isGroup": source.IsGroup,
        "pushName": info.Pushname,
    }
    if sender.is_lid:
        data["senderLid"] = True
    mimetype = getattr(value, "mimetype", "")
    if mimetype:
        data["mimetype"] = mimetype
    if field == "documentMessage" and value.fileName:
        data["fileName"] = value.fileName
    if field == "locationMessage":
        data["location"] = {"latitude": value.degreesLatitude, "longitude": value.degreesLongitude}
    context = getattr(value, "contextInfo", None)
    if context is not None and context.stanzaID:
        data["quotedId"] = context.stanzaID
    if data["type"] == "reaction":
        data["reaction"] = {"messageWaId": value.key.ID, "emoji": value.text}
    if data["type"] == "poll":
        options = [option.optionName for option in value.options]
        data["poll"] = {
            "question": value.name,
            "options": options,
            "multiple_answers": value.selectableOptionsCount != 1,
        }
    if data["type"] == "poll_vote":  # the choice itself is encrypted: the engine decrypts it
        data["pollVote"] = {"messageWaId": value.pollCreationMessageKey.ID}
    return data


# Kinds a history backfill stores: what changes other messages is not one of its own.
HISTORY_SKIPPED_KINDS = frozenset({"reaction", "poll_vote", "unknown"})


def history_batches(sync: HistorySync) -> list[dict]:
    """A history sync's conversations (whatsmeow's HistorySync event), each as the HISTORY
    event data for its chat: {chat, messages}, oldest first. Chats are named as messages
    are filed: a number (a LID's, when the sync maps it), or a group's id."""
    numbers = {lid_of_string(entry.lidJID): entry.pnJID for entry in sync.phoneNumberToLidMappings}
    batches = []
    for conversation in sync.conversations:
        chat_id = conversation.ID
        if chat_id == STATUS_CHAT or chat_id.endswith("@newsletter") or chat_id.endswith("@broadcast"):
            continue
        is_group = chat_id.endswith("@" + GROUP_SERVER)
        chat = chat_id if is_group else _history_person(chat_id, conversation.pnJID, numbers)
        if chat is None:
            continue
        messages = []
        for entry in conversation.messages:
            message = _history_message(entry.message, chat_id, chat, is_group, numbers)
            if message is not None:
                messages.append(message)
        messages.sort(key=lambda message: message["timestamp"])
        batches.append({"chat": chat["sender"] if not is_group else chat, "messages": messages})
    return batches


def lid_of_string(jid: str) -> str | None:
    user, _, server = jid.partition("@")
    return user.split(":", 1)[0] + "@" + LID_SERVER if server == LID_SERVER and user else None


def _history_person(jid: str, phone_jid: str, numbers: dict[str | None, str]) -> dict | None:
    """Who a history message is from (or a chat is with): sender, phone and lid as MESSAGE data."""
    user, _, server = jid.partition("@")
    digits = user.split(":", 1)[0].split(".", 1)[0]
    if server == USER_SERVER and digits:
        return {"sender": digits, "phone": digits}
    lid = lid_of_string(jid)
    if lid is None:
        return None
    phone = (phone_jid or numbers.get(lid) or "").partition("@")[0].split(":", 1)[0]
    if phone:
        return {"sender": phone, "phone": phone, "lid": lid}
    return {"sender": lid.partition("@")[0], "lid": lid}


def _history_message(info, chat_id: str, chat, is_group: bool, numbers: dict) -> dict | None:
    content = content_of(info.message)
    if content is None or content[0] in SILENT_KINDS or content_kind(content[0]) in HISTORY_SKIPPED_KINDS:
        return None
    field, value = content
    data = {
        "waId": info.key.ID,
        "text": content_text(field, value),
        "type": content_kind(field),
        "timestamp": epoch_datetime(info.messageTimestamp),
    }
    if info.key.fromMe:
        return data | {"sender": chat_id if is_group else chat["sender"], "fromMe": True}
    if is_group:
        author = _history_person(info.key.participant or info.participant, "", numbers)
        if author is None:
            return None
        return data | author | {"details": {"chat": chat_id, "isGroup": True, "pushName": info.pushName}}
    return data | chat | {"details": {"pushName": info.pushName} if info.pushName else {}}


def presence_update(event: Presence, resolve_lid: LidResolver) -> dict | None:
    """A followed contact came online or went offline (with when they were last seen)."""
    phone = _phone_or_lid(event.From, resolve_lid)
    if phone is None:
        return None
    data = {"from": phone, "state": "offline" if event.Unavailable else "online"}
    if lid := lid_of(event.From):
        data["lid"] = lid
    if event.Unavailable and event.LastSeen > 0:
        data["lastSeen"] = epoch_datetime(event.LastSeen)
    return data


def chat_presence_update(event: ChatPresence, resolve_lid: LidResolver) -> dict | None:
    """A contact types, records a voice note, or stops, in a chat with the session."""
    source = event.MessageSource
    if source.IsFromMe:
        return None
    phone = phone_of(source.SenderAlt) or _phone_or_lid(source.Sender, resolve_lid)
    if phone is None:
        return None
    if event.State == ChatPresence.COMPOSING:
        state = "recording" if event.Media == ChatPresence.AUDIO else "typing"
    else:
        state = "paused"
    data = {"from": phone, "state": state}
    if lid := lid_of(source.Sender) or lid_of(source.SenderAlt):
        data["lid"] = lid
    if source.IsGroup:
        data["chat"] = jid_string(source.Chat)
    return data


def _phone_or_lid(jid: JID, resolve_lid: LidResolver) -> str | None:
    if jid.Server == LID_SERVER:
        return phone_of(resolve_lid(jid) or JID()) or None
    return phone_of(jid)


def receipt_update(event: Receipt) -> tuple[str, list[str], datetime] | None:
    """(status, WhatsApp message ids, when) for delivered/read/played receipts; None otherwise."""
    status = RECEIPT_STATUSES.get(event.Type)
    if status is None or not event.MessageIDs:
        return None
    return status, list(event.MessageIDs), epoch_datetime(event.Timestamp)


def logged_out_reason(event: LoggedOut) -> str:
    cause = LOGOUT_CAUSES.get(event.Reason, "WhatsApp ended the link")
    return f"Logged out: {cause}. Link the session again with a new QR code."


def temporary_ban_reason(event: TemporaryBan) -> str:
    cause = TEMPORARY_BAN_CAUSES.get(event.Code, "of how it was used")
    minutes = max(1, round(event.Expire / 60)) if event.Expire > 0 else None
    until = f" for about {minutes} minute(s)" if minutes else ""
    return (
        f"WhatsApp temporarily banned this number{until} because {cause}. "
        "The session reconnects when the ban ends; send less, and only to people who opted in."
    )


def connect_failure_reason(event: ConnectFailure) -> str:
    name = ConnectFailureReason.Name(event.Reason) if event.Reason in ConnectFailureReason.values() else "UNKNOWN"
    detail = f": {event.Message}" if event.Message else ""
    return f"WhatsApp refused the connection ({name.lower().replace('_', ' ')}{detail})"
