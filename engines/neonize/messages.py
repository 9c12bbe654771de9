"""The WhatsApp messages (waE2E protobufs) each kind of send is made of.

Media always arrives as bytes: the service layer fetches URLs with its own bounded,
address-checked downloader. neonize would fetch a URL itself with `requests` and no
timeout, and a string given as a file is taken for a URL or a path, so strings never
reach its builders. Media builders upload through the client (a Go call) first.
"""

from __future__ import annotations

from neonize.client import NewClient
from neonize.proto.Neonize_pb2 import JID
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContactMessage,
    ContextInfo,
    ExtendedTextMessage,
    LocationMessage,
    Message,
)
from neonize.utils.enum import VoteType
from neonize.utils.jid import Jid2String, build_jid

from engines.outgoing import Outgoing

VOICE_MIMETYPE = "audio/ogg; codecs=opus"


class MediaError(ValueError):
    """The bytes are not what the kind needs (an image that is not one, say)."""


def text_message(text: str) -> Message:
    # A plain `conversation`: neonize's own string path always builds an
    # extendedTextMessage and looks up groups for anything that reads like a mention.
    return Message(conversation=text)


def location_message(latitude: float, longitude: float, *, name: str = "", address: str = "") -> Message:
    return Message(
        locationMessage=LocationMessage(
            degreesLatitude=latitude, degreesLongitude=longitude, name=name or None, address=address or None
        )
    )


def contact_message(name: str, phone: str) -> Message:
    """A contact card: WhatsApp shows "Message" and "Add contact" for the number."""
    escaped = name.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", " ")
    vcard = (
        "BEGIN:VCARD\nVERSION:3.0\n"
        f"N:;{escaped};;;\nFN:{escaped}\n"
        f"TEL;type=CELL;type=VOICE;waid={phone}:+{phone}\n"
        "END:VCARD"
    )
    return Message(contactMessage=ContactMessage(displayName=name, vcard=vcard))


def _media(kind: str, build):
    try:
        return build()
    except FileNotFoundError as exc:
        if exc.filename in ("ffmpeg", "ffprobe"):
            raise MediaError(f"Sending {kind} needs ffmpeg and ffprobe on the engine host") from exc
        raise MediaError(f"The {kind} could not be read: {exc}") from exc
    except (OSError, ValueError) as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise MediaError(f"The {kind} could not be read: {exc}") from exc


def image_message(client: NewClient, data: bytes, *, caption: str = "") -> Message:
    return _media("image", lambda: client.build_image_message(bytes(data), caption=caption or None))


def document_message(
    client: NewClient, data: bytes, *, filename: str, mimetype: str | None = None, caption: str = ""
) -> Message:
    return _media(
        "document",
        lambda: client.build_document_message(
            bytes(data), caption=caption or None, title=filename, filename=filename, mimetype=mimetype
        ),
    )


def audio_message(client: NewClient, data: bytes, *, voice: bool = False) -> Message:
    """Audio, or a voice note (`voice`: Ogg Opus, shown with a waveform). Needs ffprobe."""
    message = _media("audio", lambda: client.build_audio_message(bytes(data), ptt=voice))
    if voice:
        message.audioMessage.mimetype = VOICE_MIMETYPE  # what WhatsApp's own clients send
    return message


def video_message(client: NewClient, data: bytes, *, caption: str = "") -> Message:
    """A video with its thumbnail and duration. Needs ffmpeg and ffprobe."""
    return _media("video", lambda: client.build_video_message(bytes(data), caption=caption or None))


def sticker_message(client: NewClient, data: bytes) -> Message:
    return _media("sticker", lambda: client.build_sticker_message(bytes(data)))


def poll_message(client: NewClient, question: str, options: tuple[str, ...], *, multiple: bool) -> Message:
    count = VoteType.MULTIPLE if multiple else VoteType.SINGLE
    return client.build_poll_vote_creation(question, list(options), count)


def outgoing_message(client: NewClient, outgoing: Outgoing, *, chat: JID, me: JID | None) -> Message:
    """The WhatsApp message for any kind we send, with its reply, mentions and view-once.

    `chat` is the recipient's JID; `me` the session's own (the sender of our quoted or
    reacted-to messages).
    """
    kind = outgoing.kind
    if kind == "reaction":
        reaction = outgoing.reaction
        sender = me if reaction.from_me and me is not None else chat
        return client.build_reaction(chat, sender, reaction.message_wa_id, reaction.emoji)
    if kind == "text":
        if not (outgoing.quoted_wa_id or outgoing.mentions):
            return text_message(outgoing.text)
        message = Message(extendedTextMessage=ExtendedTextMessage(text=outgoing.text))
        inner = message.extendedTextMessage
    else:
        message = _kind_message(client, outgoing)
        inner = getattr(message, message.ListFields()[0][0].name)
    if outgoing.quoted_wa_id or outgoing.mentions:
        inner.contextInfo.MergeFrom(_context(outgoing, chat=chat, me=me))
    if outgoing.view_once and hasattr(inner, "viewOnce"):
        inner.viewOnce = True
    return message


def _kind_message(client: NewClient, outgoing: Outgoing) -> Message:
    kind, data, caption = outgoing.kind, outgoing.media, outgoing.text
    if kind == "image":
        return image_message(client, data, caption=caption)
    if kind == "video":
        return video_message(client, data, caption=caption)
    if kind in ("audio", "ptt"):
        return audio_message(client, data, voice=kind == "ptt")
    if kind == "document":
        return document_message(
            client, data, filename=outgoing.filename or "document", mimetype=outgoing.mimetype, caption=caption
        )
    if kind == "sticker":
        return sticker_message(client, data)
    if kind == "location":
        place = outgoing.location
        return location_message(place.latitude, place.longitude, name=place.name, address=place.address)
    if kind == "contact":
        return contact_message(outgoing.contact.full_name, outgoing.contact.phone)
    if kind == "poll":
        poll = outgoing.poll
        return poll_message(client, poll.question, poll.options, multiple=poll.multiple_answers)
    raise MediaError(f"Cannot send a {kind} message")


def _context(outgoing: Outgoing, *, chat: JID, me: JID | None) -> ContextInfo:
    context = ContextInfo(mentionedJID=[Jid2String(build_jid(phone)) for phone in outgoing.mentions])
    if outgoing.quoted_wa_id:
        author = me if outgoing.quoted_from_me and me is not None else chat
        context.stanzaID = outgoing.quoted_wa_id
        context.participant = Jid2String(JID(User=author.User, Server=author.Server))
        context.quotedMessage.MergeFrom(Message(conversation=outgoing.quoted_text))
    return context
