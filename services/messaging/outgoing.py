"""A send request's body turned into one outgoing message of any kind.

The kind is read from the payload, as the self-hosted gateway API does: `image`, `video`,
`audio` (with `ptt: true` for a voice note, or `voice`), `document`, `sticker`,
`location`, `contact`, `poll` or `reaction`; otherwise it is text from `message` (the
WAMessenger field) or `text`. Modifiers: `quoted` (reply to a message), `mentions`,
`viewOnce`, `linkPreview`. Media comes as a URL or data URL string, or an object with
`url` (or `data`), `caption`, `filename`.

The body's shape (one kind, types, lengths, ranges) is the send schema's
(blueprints/schemas/messages.py), checked before it comes here; what is checked here is
what no schema can say: that numbers exist, that media is what it claims, that a quoted
or reacted-to message is the session's.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import Any

from flask import current_app
from sqlalchemy import or_, select

from engines.outgoing import MEDIA_KINDS, ContactCard, Location, MediaFile, Outgoing, Poll, Reaction
from engines.state import SharedState
from extensions import db
from models import Message, WaSession
from models.message import OUTBOUND
from services.errors import NotFound, ValidationError
from services.messaging.media import media_load
from services.platform.phones import card_phone, phone_normalize
from services.platform.shared_state import shared_state

OUTGOING_FIELDS = frozenset(field.name for field in fields(Outgoing)) - {"media"}
# Payload fields that each name a kind, in the order they are looked for.
KIND_FIELDS = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "voice": "ptt",
    "document": "document",
    "sticker": "sticker",
    "location": "location",
    "contact": "contact",
    "poll": "poll",
    "reaction": "reaction",
}


def outgoing_kind(body: dict) -> tuple[str, str | None]:
    """(kind, the payload field that holds it); text when no kind field is present."""
    present = [name for name in KIND_FIELDS if body.get(name) is not None]
    if not present:
        return "text", None
    name = present[0]
    kind = KIND_FIELDS[name]
    spec = body[name]
    # Both places a voice note can be asked for are checked, whichever says so.
    if kind == "audio" and any([_flag(body, "ptt"), isinstance(spec, dict) and _flag(spec, "ptt")]):
        kind = "ptt"
    return kind, name


def outgoing_parse(session: WaSession, body: dict) -> Outgoing:
    """The message a send body (checked by its schema) asks to send from `session`; 4xx for
    a number, medium or message it names that cannot be."""
    kind, name = outgoing_kind(body)
    quoted = _quoted(session, body.get("quoted"))
    common: dict[str, Any] = {
        "mentions": _mentions(body.get("mentions")),
        **(
            {"quoted_wa_id": quoted.wa_id, "quoted_from_me": quoted.direction == OUTBOUND, "quoted_text": quoted.body}
            if quoted is not None
            else {}
        ),
    }
    if kind == "text":
        text = body["message"] if body.get("message") is not None else body["text"]
        return Outgoing("text", text=text, link_preview=body.get("linkPreview", True), **common)
    value = body[name]
    if kind in MEDIA_KINDS:
        return _media(kind, name, value, body, common)
    if kind == "location":
        return Outgoing("location", location=_location(value), **common)
    if kind == "contact":
        return Outgoing("contact", contact=_contact(value), **common)
    if kind == "poll":
        return Outgoing("poll", poll=_poll(value), **common)
    return Outgoing("reaction", reaction=_reaction(session, value))


# Wamux's explicit media routes: `mediaType` names the kind, `mediaUrl` the file.
EXPLICIT_MEDIA_TYPES = ("image", "video", "document", "sticker")


def explicit_media_body(body: dict) -> dict:
    """`POST .../send/media` {to, mediaUrl, mediaType, caption, filename} as a send body."""
    spec = {"url": body["mediaUrl"]}
    spec |= {name: body[name] for name in ("caption", "filename") if body.get(name) is not None}
    return _explicit(body, {body["mediaType"]: spec})


def explicit_audio_body(body: dict) -> dict:
    """`POST .../send/audio` {to, audioUrl, ptt} as a send body (ptt: a voice note)."""
    return _explicit(body, {"audio": {"url": body["audioUrl"]}, "ptt": body.get("ptt", False)})


def _explicit(body: dict, content: dict) -> dict:
    """The route's content with the modifiers any send takes (quoted, mentions, viewOnce)."""
    return content | {name: body[name] for name in ("to", "quoted", "mentions", "viewOnce") if name in body}


def outgoing_preview(outgoing: Outgoing) -> str:
    """A one-line text for the message log and lists: the text or caption, or what it is."""
    if outgoing.text:
        return outgoing.text
    if outgoing.location is not None:
        return "📍 " + (outgoing.location.name or f"{outgoing.location.latitude}, {outgoing.location.longitude}")
    if outgoing.contact is not None:
        return "👤 " + outgoing.contact.full_name
    if outgoing.poll is not None:
        return "📊 " + outgoing.poll.question
    if outgoing.reaction is not None:
        return outgoing.reaction.emoji or "(reaction removed)"
    if outgoing.filename:
        return "📄 " + outgoing.filename
    return {"image": "🖼 Photo", "video": "🎬 Video", "audio": "🎵 Audio", "ptt": "🎤 Voice message"}.get(
        outgoing.kind, "🏷 Sticker"
    )


def _media(kind: str, name: str, value: object, body: dict, common: dict) -> Outgoing:
    spec = {"url": value} if isinstance(value, str) else value
    source = spec.get("url") if spec.get("url") is not None else spec.get("data")
    field = f"{name}.url" if not isinstance(value, str) else name
    # The caption is the media's own, else the body's, else the message (a WAMessenger-style
    # client adding a picture to its text).
    captions = [text for text in (spec.get("caption"), body.get("caption"), body.get("message")) if text is not None]
    filename = spec.get("filename") if kind == "document" else None
    media = media_load(kind, source, field=field, filename=filename)
    view_once = any([_flag(spec, "viewOnce"), _flag(body, "viewOnce")])
    if kind == "document" and media.filename is None:
        media = type(media)(media.kind, media.mimetype, media.data, "document" + _extension(media.mimetype))
    return Outgoing(
        kind,
        text=captions[0] if captions else "",
        media=media.data,
        mimetype=media.mimetype,
        filename=media.filename,
        view_once=view_once,
        **common,
    )


def _extension(mimetype: str) -> str:
    return {
        "application/pdf": ".pdf",
        "application/zip": ".zip",
        "application/msword": ".doc",
        "text/plain": ".txt",
        "image/jpeg": ".jpg",
        "image/png": ".png",
        "image/webp": ".webp",
        "video/mp4": ".mp4",
        "audio/mpeg": ".mp3",
        "audio/ogg": ".ogg",
    }.get(mimetype, "")


def _flag(spec: dict, name: str) -> bool:
    """A true/false field; null is the same as leaving it out (false)."""
    return bool(spec.get(name))


def _short(spec: dict, key: str) -> str:
    return (spec.get(key) or "").strip()


def _location(spec: dict) -> Location:
    return Location(
        latitude=float(spec.get("latitude", spec.get("lat"))),
        longitude=float(spec.get("longitude", spec.get("lng"))),
        name=_short(spec, "name"),
        address=_short(spec, "address"),
    )


def _contact(spec: dict) -> ContactCard:
    return ContactCard(full_name=_short(spec, "fullName"), phone=card_phone(spec["phoneNumber"]))


def _poll(spec: dict) -> Poll:
    question = _short(spec, "question" if "question" in spec else "name")
    cleaned = tuple(option.strip() for option in spec["options"])
    # WhatsApp tells answers apart as they show, trimmed: " Yes" and "Yes" are one answer.
    if len(set(cleaned)) != len(cleaned):
        raise ValidationError("Poll answers must be different from each other", code="INVALID_POLL")
    return Poll(question, cleaned, spec.get("multipleAnswers", False))


def _reaction(session: WaSession, spec: dict) -> Reaction:
    target = _message_in(session, spec["messageId"], "reaction.messageId")
    return Reaction(message_wa_id=target.wa_id, from_me=target.direction == OUTBOUND, emoji=spec["emoji"])


def _quoted(session: WaSession, value: object) -> Message | None:
    if value is None:
        return None
    message_id = value.get("messageId") if isinstance(value, dict) else value
    return _message_in(session, message_id, "quoted")


def _message_in(session: WaSession, message_id: str, field: str) -> Message:
    """One of the session's messages, by our id or its WhatsApp id."""
    message = db.session.scalar(
        select(Message).where(
            Message.session_id == session.id, or_(Message.id == message_id, Message.wa_id == message_id)
        )
    )
    if message is None or message.wa_id is None:
        raise NotFound(
            f"'{field}' names no message of this session", error="Message not found", code="MESSAGE_NOT_FOUND"
        )
    return message


def _mentions(value: list | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(dict.fromkeys(phone_normalize(phone, field="mentions") for phone in value))


def media_files() -> SharedState:
    """Where message media is kept, by name: outgoing/<message id>, inbound/<message id>,
    simulated/<token>. Files under DATA_DIR/media, or PostgreSQL when it is the database, so
    that any web and any engine host find what another wrote (engines/state.py)."""
    return shared_state(current_app, "media")


def outgoing_store(message: Message, outgoing: Outgoing) -> None:
    """Keep what the message sends with it: its details, and its media bytes as a file.

    The file (outgoing/<message id>) is written before the message commits, so whichever
    engine host sends it finds it, also after a restart.
    """
    if outgoing.kind == "text" and outgoing == Outgoing("text", text=outgoing.text):
        return  # plain text: the body is all there is
    record = outgoing.to_record()
    if outgoing.media is not None:
        name = f"outgoing/{message.id}"
        record |= {"media_file": name} | media_save(outgoing.media, name)
    message.payload = record


def media_save(media: bytes | MediaFile, name: str) -> dict:
    """Keep media as the file `name` (whole or not at all); its size and SHA-256."""
    if isinstance(media, MediaFile):
        media_files().file_put(name, media.file)
        return {"size": media.size, "sha256": media.sha256}
    media_files().file_put(name, media)
    return {"size": len(media), "sha256": hashlib.sha256(media).hexdigest()}


def media_read(name: str) -> bytes:
    """A kept media file's bytes (FileNotFoundError when it is not kept)."""
    media = media_files().file_get(name)
    if media is None:
        raise FileNotFoundError(f"No such media file: {name}")
    return media


def outgoing_load(message: Message) -> Outgoing:
    """What a stored message sends, media bytes included (a text one is just its body)."""
    if not message.payload:
        return Outgoing("text", text=message.body)
    # What the message carries (not what came back to it since: reactions, votes, file facts).
    record = {key: value for key, value in message.payload.items() if key in OUTGOING_FIELDS}
    media_file = message.payload.get("media_file")
    media = media_read(media_file) if media_file else None
    return Outgoing.from_record(record, media)
