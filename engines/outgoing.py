"""What a session sends: one message of any kind, as every engine receives it.

The services build it from a checked request (media already fetched and checked, as
bytes); an engine maps it to its own calls. `to_record`/`from_record` store it with the
message (the bytes live in a file beside it, see services/messaging/outgoing.py), so a send line
rebuilt after a restart sends exactly what was accepted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import BinaryIO

KINDS = ("text", "image", "video", "audio", "ptt", "document", "sticker", "location", "contact", "poll", "reaction")
MEDIA_KINDS = ("image", "video", "audio", "ptt", "document", "sticker")
# Media WhatsApp can send as view-once.
VIEW_ONCE_KINDS = ("image", "video", "ptt", "audio")


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


@dataclass(frozen=True)
class ContactCard:
    full_name: str
    phone: str


@dataclass(frozen=True)
class Poll:
    question: str
    options: tuple[str, ...]
    multiple_answers: bool = False


@dataclass(frozen=True)
class Reaction:
    message_wa_id: str  # the WhatsApp id of the message reacted to
    from_me: bool  # whether that message was the session's own
    emoji: str  # "" takes a reaction back


@dataclass(frozen=True)
class MediaFile:
    """Media in an open file rather than in memory: a large upload, decoded to disk as it
    arrived. Only the web role holds one, until the message is stored with its media
    (services/messaging/outgoing.py); engines always get `Outgoing.media` as bytes."""

    file: BinaryIO = field(repr=False)
    size: int
    sha256: str


@dataclass(frozen=True)
class Outgoing:
    kind: str
    text: str = ""  # the text of a text message, or a media message's caption
    media: bytes | MediaFile | None = field(default=None, repr=False)
    mimetype: str | None = None
    filename: str | None = None
    location: Location | None = None
    contact: ContactCard | None = None
    poll: Poll | None = None
    reaction: Reaction | None = None
    quoted_wa_id: str | None = None  # a reply: the WhatsApp id of the quoted message
    quoted_from_me: bool = False
    quoted_text: str = ""
    mentions: tuple[str, ...] = ()  # phone numbers mentioned in the text or caption
    view_once: bool = False
    link_preview: bool = True

    def to_record(self) -> dict:
        """Everything but the bytes, as JSON-ready data."""
        record = asdict(replace(self, media=None))  # asdict would copy the bytes (or try to copy a file)
        record.pop("media")
        record["mentions"] = list(self.mentions)
        if self.poll is not None:
            record["poll"]["options"] = list(self.poll.options)
        return {key: value for key, value in record.items() if value not in (None, "", (), [], False)} | {
            "kind": self.kind,
            "link_preview": self.link_preview,
        }

    @classmethod
    def from_record(cls, record: dict, media: bytes | None = None) -> Outgoing:
        values = dict(record)
        for name, kind in (("location", Location), ("contact", ContactCard), ("poll", Poll), ("reaction", Reaction)):
            if values.get(name) is not None:
                values[name] = kind(**values[name])
        if values.get("poll") is not None:
            values["poll"] = Poll(
                values["poll"].question, tuple(values["poll"].options), values["poll"].multiple_answers
            )
        values["mentions"] = tuple(values.get("mentions", ()))
        return cls(media=media, **values)
