"""A send request's body turned into one checked outgoing message of any kind.

The kind is read from the payload, as the self-hosted gateway API does: `image`, `video`,
`audio` (with `ptt: true` for a voice note, or `voice`), `document`, `sticker`,
`location`, `contact`, `poll` or `reaction`; otherwise it is text from `message` (the
WAMessenger field) or `text`. Modifiers: `quoted` (reply to a message), `mentions`,
`viewOnce`, `linkPreview`. Media comes as a URL or data URL string, or an object with
`url` (or `data`), `caption`, `filename`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import or_, select

from engines.outgoing import MEDIA_KINDS, VIEW_ONCE_KINDS, ContactCard, Location, Outgoing, Poll, Reaction
from extensions import db
from models import Message, WaSession
from models.message import OUTBOUND
from services.errors import NotFound, ValidationError
from services.messaging.media import media_load
from services.platform.phones import card_phone, phone_normalize

OUTGOING_FIELDS = frozenset(field.name for field in fields(Outgoing)) - {"media"}
TEXT_MAX = 4096
CAPTION_MAX = 1024
NAME_MAX = 256
POLL_OPTIONS = (2, 12)
POLL_OPTION_MAX = 100
MENTIONS_MAX = 50
EMOJI_MAX = 16
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
    if len(present) > 1:
        raise ValidationError(
            f"A message has one kind; this one has {', '.join(present)}",
            code="AMBIGUOUS_MESSAGE",
        )
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
    """The checked message `body` asks to send from `session` (400/413/415 on anything wrong)."""
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
        field = "message" if body.get("message") is not None or body.get("text") is None else "text"
        preview = body.get("linkPreview", True)
        if not isinstance(preview, bool):
            raise ValidationError("'linkPreview' must be true or false", code="INVALID_FIELD")
        return Outgoing("text", text=_text(body.get(field), field, TEXT_MAX), link_preview=preview, **common)
    value = body[name]
    if kind in MEDIA_KINDS:
        return _media(kind, name, value, body, common)
    if kind == "location":
        return Outgoing("location", location=_location(_object(value, name)), **common)
    if kind == "contact":
        return Outgoing("contact", contact=_contact(_object(value, name)), **common)
    if kind == "poll":
        return Outgoing("poll", poll=_poll(_object(value, name)), **common)
    return Outgoing("reaction", reaction=_reaction(session, _object(value, name)))


# Wamux's explicit media routes: `mediaType` names the kind, `mediaUrl` the file.
EXPLICIT_MEDIA_TYPES = ("image", "video", "document", "sticker")


def explicit_media_body(body: dict) -> dict:
    """`POST .../send/media` {to, mediaUrl, mediaType, caption, filename} as a send body."""
    kind = body.get("mediaType")
    if kind not in EXPLICIT_MEDIA_TYPES:
        raise ValidationError(f"'mediaType' must be one of {', '.join(EXPLICIT_MEDIA_TYPES)}", code="INVALID_FIELD")
    spec = {"url": _required(body, "mediaUrl")}
    spec |= {name: body[name] for name in ("caption", "filename") if body.get(name) is not None}
    return _explicit(body, {kind: spec})


def explicit_audio_body(body: dict) -> dict:
    """`POST .../send/audio` {to, audioUrl, ptt} as a send body (ptt: a voice note)."""
    return _explicit(body, {"audio": {"url": _required(body, "audioUrl")}, "ptt": body.get("ptt", False)})


def _required(body: dict, name: str) -> object:
    if body.get(name) is None:
        raise ValidationError(f"'{name}' is required", code="MISSING_FIELD", details={"field": name})
    return body[name]


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
    spec = {"url": value} if isinstance(value, str) else _object(value, name)
    source = spec.get("url") if spec.get("url") is not None else spec.get("data")
    field = f"{name}.url" if not isinstance(value, str) else name
    # The caption is the media's own, else the body's, else the message (a WAMessenger-style
    # client adding a picture to its text); each one given is checked, used or not.
    captions = [
        _text(value, "caption", CAPTION_MAX, required=False)
        for value in (spec.get("caption"), body.get("caption"), body.get("message"))
        if value is not None
    ]
    caption = captions[0] if captions else ""
    if any(captions) and kind in ("audio", "ptt", "sticker"):
        raise ValidationError(f"A {kind} has no caption", code="INVALID_FIELD", details={"field": "caption"})
    filename = spec.get("filename") if kind == "document" else None
    media = media_load(kind, source, field=field, filename=filename)
    view_once = any([_flag(spec, "viewOnce"), _flag(body, "viewOnce")])
    if view_once and kind not in VIEW_ONCE_KINDS:
        raise ValidationError(
            f"Only {', '.join(VIEW_ONCE_KINDS)} can be sent view-once",
            code="INVALID_FIELD",
            details={"field": "viewOnce"},
        )
    if kind == "document" and media.filename is None:
        media = type(media)(media.kind, media.mimetype, media.data, "document" + _extension(media.mimetype))
    return Outgoing(
        kind,
        text=caption,
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


def _object(value: object, name: str) -> dict:
    if not isinstance(value, dict):
        raise ValidationError(f"'{name}' must be an object", code="INVALID_FIELD", details={"field": name})
    return value


def _flag(spec: dict, name: str) -> bool:
    """A true/false field; null is the same as leaving it out (false)."""
    value = spec.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(f"'{name}' must be true or false", code="INVALID_FIELD", details={"field": name})
    return value


def _text(value: object, field: str, maximum: int, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(
            f"'{field}' is required: the text to send", code="EMPTY_MESSAGE", details={"field": field}
        )
    if len(value) > maximum:
        raise ValidationError(
            f"'{field}' is too long: at most {maximum} characters", code="MESSAGE_TOO_LONG", details={"field": field}
        )
    return value


def _short(spec: dict, key: str, *, required: bool = False) -> str:
    value = spec.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise ValidationError(
            f"'{key}' must be a text of 1 to {NAME_MAX} characters", code="INVALID_FIELD", details={"field": key}
        )
    return value.strip()


def _number(spec: dict, names: tuple[str, str], low: float, high: float) -> float:
    value = spec.get(names[0], spec.get(names[1]))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"'{names[0]}' must be a number", code="INVALID_LOCATION", details={"field": names[0]})
    if not low <= value <= high:
        raise ValidationError(
            f"'{names[0]}' must be between {low:g} and {high:g}", code="INVALID_LOCATION", details={"field": names[0]}
        )
    return float(value)


def _location(spec: dict) -> Location:
    return Location(
        latitude=_number(spec, ("latitude", "lat"), -90, 90),
        longitude=_number(spec, ("longitude", "lng"), -180, 180),
        name=_short(spec, "name"),
        address=_short(spec, "address"),
    )


def _contact(spec: dict) -> ContactCard:
    name = _short(spec, "fullName", required=True)
    return ContactCard(full_name=name, phone=card_phone(spec.get("phoneNumber")))


def _poll(spec: dict) -> Poll:
    question = _short(spec, "question" if "question" in spec else "name", required=True)
    options = spec.get("options")
    low, high = POLL_OPTIONS
    if not isinstance(options, list) or not low <= len(options) <= high:
        raise ValidationError(f"'options' must be a list of {low} to {high} answers", code="INVALID_POLL")
    if not all(isinstance(o, str) and o.strip() and len(o) <= POLL_OPTION_MAX for o in options):
        raise ValidationError(f"Each poll answer is a text of 1 to {POLL_OPTION_MAX} characters", code="INVALID_POLL")
    cleaned = tuple(o.strip() for o in options)
    if len(set(cleaned)) != len(cleaned):
        raise ValidationError("Poll answers must be different from each other", code="INVALID_POLL")
    multiple = spec.get("multipleAnswers", False)
    if not isinstance(multiple, bool):
        raise ValidationError("'multipleAnswers' must be true or false", code="INVALID_POLL")
    return Poll(question, cleaned, multiple)


def _reaction(session: WaSession, spec: dict) -> Reaction:
    emoji = spec.get("emoji")
    if not isinstance(emoji, str) or len(emoji) > EMOJI_MAX:
        raise ValidationError("'emoji' must be one emoji, or \"\" to take a reaction back", code="INVALID_FIELD")
    target = _message_in(session, spec.get("messageId"), "reaction.messageId")
    return Reaction(message_wa_id=target.wa_id, from_me=target.direction == OUTBOUND, emoji=emoji)


def _quoted(session: WaSession, value: object) -> Message | None:
    if value is None:
        return None
    message_id = value.get("messageId") if isinstance(value, dict) else value
    return _message_in(session, message_id, "quoted")


def _message_in(session: WaSession, message_id: object, field: str) -> Message:
    """One of the session's messages, by our id or its WhatsApp id."""
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValidationError(f"'{field}' must be a message id", code="INVALID_FIELD", details={"field": field})
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


def _mentions(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MENTIONS_MAX:
        raise ValidationError(f"'mentions' must be a list of up to {MENTIONS_MAX} phone numbers", code="INVALID_FIELD")
    return tuple(dict.fromkeys(phone_normalize(phone, field="mentions") for phone in value))


def media_root() -> Path:
    """Where message media lives: outgoing/<message id>, inbound/<message id>."""
    return Path(current_app.config["DATA_DIR"]) / "media"


def outgoing_store(message: Message, outgoing: Outgoing) -> None:
    """Keep what the message sends with it: its details, and its media bytes in a file.

    The file (DATA_DIR/media/outgoing/<message id>) is written before the message commits,
    so whichever engine host sends it (sharing DATA_DIR) finds it, also after a restart.
    """
    if outgoing.kind == "text" and outgoing == Outgoing("text", text=outgoing.text):
        return  # plain text: the body is all there is
    record = outgoing.to_record()
    if outgoing.media is not None:
        folder = media_root() / "outgoing"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / message.id
        temporary = path.with_suffix(".part")
        temporary.write_bytes(outgoing.media)
        temporary.replace(path)
        record |= {
            "media_file": f"outgoing/{message.id}",
            "size": len(outgoing.media),
            "sha256": hashlib.sha256(outgoing.media).hexdigest(),
        }
    message.payload = record


def outgoing_load(message: Message) -> Outgoing:
    """What a stored message sends, media bytes included (a text one is just its body)."""
    if not message.payload:
        return Outgoing("text", text=message.body)
    # What the message carries (not what came back to it since: reactions, votes, file facts).
    record = {key: value for key, value in message.payload.items() if key in OUTGOING_FIELDS}
    media_file = message.payload.get("media_file")
    media = (media_root() / media_file).read_bytes() if media_file else None
    return Outgoing.from_record(record, media)
