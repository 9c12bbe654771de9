"""The WhatsApp messages (waE2E protobufs) each kind of send is made of.

Media always arrives as bytes: the service layer fetches URLs with its own bounded,
address-checked downloader. neonize would fetch a URL itself with `requests` and no
timeout, and a string given as a file is taken for a URL or a path, so strings never
reach its builders. Media builders upload through the client (a Go call) first.
"""

from __future__ import annotations

from neonize.client import NewClient
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContactMessage, LocationMessage, Message

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
