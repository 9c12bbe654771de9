"""What the dashboard shows of a message of any kind: its label, the file to look at, the
place, the contact card, the poll with its votes, the reactions and the message it answers.

Engines word some details differently (sends and the simulator record `filename` and
`quoted_wa_id`, the neonize engine `fileName` and `quotedId`): this is the one place that
reads them, so the templates only lay out what it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask import url_for

from models import Message
from services.messaging.history import message_by_wa_id
from services.messaging.inbound import poll_results

# Each kind's icon and name, in the order the log's kind filter lists them.
KIND_LABELS = {
    "text": ("💬", "Text"),
    "image": ("📷", "Image"),
    "video": ("🎬", "Video"),
    "ptt": ("🎤", "Voice note"),
    "audio": ("🎵", "Audio"),
    "document": ("📄", "Document"),
    "sticker": ("🏷", "Sticker"),
    "location": ("📍", "Location"),
    "contact": ("👤", "Contact card"),
    "poll": ("📊", "Poll"),
    "reaction": ("😊", "Reaction"),
}


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float
    name: str
    address: str

    @property
    def map_url(self) -> str:
        """The spot on OpenStreetMap, marked and zoomed in."""
        query = urlencode({"mlat": self.latitude, "mlon": self.longitude})
        return f"https://www.openstreetmap.org/?{query}#map=17/{self.latitude}/{self.longitude}"


@dataclass(frozen=True)
class Card:
    name: str
    phone: str


@dataclass(frozen=True)
class PollOption:
    option: str
    votes: int
    voters: list[str]


@dataclass(frozen=True)
class PollView:
    question: str
    multiple_answers: bool
    options: list[PollOption]
    voters: int  # how many people voted (each counts once, however many options they chose)


@dataclass(frozen=True)
class ReactionChip:
    emoji: str
    count: int
    people: list[str]  # the phone numbers that reacted with it

    @property
    def who(self) -> str:
        return ", ".join(f"+{phone}" for phone in self.people)


@dataclass(frozen=True)
class MessageView:
    kind: str
    icon: str
    label: str
    text: str  # the text or caption; "" when the stored body only names the kind ("🖼 Photo")
    media_url: str | None  # the dashboard's link to the file, when one is kept
    media_note: str  # why a file the message had is not kept
    mimetype: str
    size: str  # "12.5 KB"
    sha256: str
    filename: str
    place: Place | None
    card: Card | None
    poll: PollView | None
    reactions: list[ReactionChip]
    reaction_emoji: str | None  # a reaction message's emoji ("" when it took a reaction back)
    reaction_to: str | None  # the text of the message a reaction message is for
    quoted: str | None  # the text of the message this one replies to
    view_once: bool
    mentions: list[str]
    push_name: str
    chat: str


def message_view(message: Message) -> MessageView:
    """Everything the log, a session's recent messages and the detail view show of `message`."""
    payload = message.payload or {}
    icon, label = KIND_LABELS.get(message.type, ("", message.type))
    reaction = payload.get("reaction") if message.type == "reaction" else None
    return MessageView(
        kind=message.type,
        icon=icon,
        label=label,
        text=_text(message, payload),
        media_url=url_for("dashboard.message_media", message_id=message.id) if payload.get("media_file") else None,
        media_note=payload.get("media_dropped", ""),
        mimetype=payload.get("mimetype", ""),
        size=size_text(payload["size"]) if isinstance(payload.get("size"), int) else "",
        sha256=payload.get("sha256", ""),
        filename=payload.get("filename") or payload.get("fileName") or "",
        place=_place(payload.get("location")),
        card=_card(payload.get("contact")),
        poll=_poll(payload.get("poll"), payload.get("votes") or {}),
        reactions=_reactions(payload.get("reactions") or {}),
        reaction_emoji=reaction.get("emoji", "") if isinstance(reaction, dict) else None,
        reaction_to=_referenced_text(message, reaction.get("message_wa_id")) if isinstance(reaction, dict) else None,
        quoted=_quoted(message, payload),
        view_once=bool(payload.get("view_once")),
        mentions=list(payload.get("mentions") or []),
        push_name=payload.get("pushName") or "",
        chat=payload.get("chat") or "",
    )


def size_text(size: int) -> str:
    """A file size as people read it: 512 B, 12.5 KB, 3.2 MB."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _text(message: Message, payload: dict) -> str:
    if message.type == "text" or not payload:
        return message.body
    if "text" in payload:  # a caption, recorded apart from the body
        return payload["text"]
    if "chat" in payload:  # the neonize engine's own words for what arrived ("[document: a.pdf]")
        return message.body
    return ""  # the body only names the kind, which the label already says


def _place(location: object) -> Place | None:
    if not isinstance(location, dict):
        return None
    try:
        latitude, longitude = float(location["latitude"]), float(location["longitude"])
    except (KeyError, TypeError, ValueError):
        return None
    return Place(latitude, longitude, str(location.get("name") or ""), str(location.get("address") or ""))


def _card(contact: object) -> Card | None:
    if not isinstance(contact, dict):
        return None
    return Card(str(contact.get("full_name") or contact.get("fullName") or ""), str(contact.get("phone") or ""))


def _poll(poll: object, votes: dict[str, list[str]]) -> PollView | None:
    if not isinstance(poll, dict):
        return None
    options = [str(option) for option in poll.get("options") or []]
    counted = []
    for result in poll_results(options, votes):
        voters = sorted(phone for phone, chosen in votes.items() if result["option"] in chosen)
        counted.append(PollOption(result["option"], result["votes"], voters))
    return PollView(str(poll.get("question") or ""), bool(poll.get("multiple_answers")), counted, len(votes))


def _reactions(reactions: dict[str, str]) -> list[ReactionChip]:
    """One chip per emoji, the most used first."""
    people: dict[str, list[str]] = {}
    for phone, emoji in sorted(reactions.items()):
        people.setdefault(emoji, []).append(phone)
    chips = [ReactionChip(emoji, len(phones), phones) for emoji, phones in people.items()]
    return sorted(chips, key=lambda chip: -chip.count)


def _quoted(message: Message, payload: dict) -> str | None:
    wa_id = payload.get("quoted_wa_id") or payload.get("quotedId")
    if not wa_id:
        return None
    return payload.get("quoted_text") or _referenced_text(message, wa_id)


def _referenced_text(message: Message, wa_id: str | None) -> str:
    """The text of the session's message with that WhatsApp id ("a message" if it is not kept)."""
    referenced = message_by_wa_id(message.session_id, wa_id)
    return referenced.body if referenced is not None else "a message"
