"""What Wamux's routes take and answer, in Wamux's field names."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, Required, Union

from pydantic import Discriminator, Field, Tag, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, CLOSED, NOT_BLANK, OPEN, Caption, NoCaption, Text, Timestamp
from blueprints.schemas.messages import STATUSES, MediaSource, Recipient
from engines.outgoing import KINDS

SessionKey = Annotated[
    str,
    Field(max_length=100, pattern=NOT_BLANK, description="Your name for the session", examples=["my-session"]),
]
SessionChoice = Annotated[
    str,
    Field(
        description="The session to send from; needed only when the key is not bound to one session and the "
        "account has more than one connected session"
    ),
]
Status = Annotated[Literal[("pending", *STATUSES)], Field(description="pending until sent; then sent, delivered…")]  # type: ignore[misc]

# -- sessions -----------------------------------------------------------------------------------


@with_config(CLOSED)
class SessionCreate(TypedDict, total=False):
    session_key: SessionKey


@with_config(CLOSED)
class SessionChange(TypedDict):
    session_key: SessionKey


@with_config(ANSWER)
class Session(TypedDict):
    id: str
    session_key: Annotated[str, Field(description="Your name for the session")]
    status: Annotated[
        Literal["connecting", "pending", "connected", "reconnecting", "disconnected", "error"],
        Field(description="pending: waiting for its QR code to be scanned"),
    ]
    phone: Annotated[str | None, Field(description="The linked phone, once connected")]
    createdAt: Timestamp | None
    updatedAt: Timestamp | None


@with_config(ANSWER)
class SessionList(TypedDict):
    data: list[Session]
    total: int


@with_config(ANSWER)
class SessionDeleted(TypedDict):
    id: str
    deleted: Literal[True]


# -- messages -----------------------------------------------------------------------------------


@with_config(OPEN)
class SendText(TypedDict):
    to: Required[Recipient]
    message: Required[Text]
    sessionId: NotRequired[SessionChoice]


def _media(kind: str) -> object:
    fields: dict[str, Any] = {
        "to": Required[Recipient],
        "mediaType": Required[Literal[kind]],
        "mediaUrl": Required[MediaSource],
        "caption": NotRequired[(Caption if kind in ("image", "video", "document") else NoCaption) | None],
        "sessionId": NotRequired[SessionChoice],
    }
    if kind == "document":
        fields["filename"] = NotRequired[Annotated[str, Field(pattern=NOT_BLANK)] | None]
    return with_config(OPEN)(TypedDict(f"Wamux{kind.title()}", fields))


def _media_type(body: object) -> str | None:
    kind = body.get("mediaType") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None


SendMedia = Annotated[
    Union[tuple(Annotated[_media(kind), Tag(kind)] for kind in ("image", "video", "document", "sticker"))],  # noqa: UP007
    Discriminator(_media_type),
]


@with_config(OPEN)
class SendAudio(TypedDict):
    to: Required[Recipient]
    audioUrl: Required[MediaSource]
    ptt: NotRequired[Annotated[bool | None, Field(description="true: a voice note; false: an audio file")]]
    sessionId: NotRequired[SessionChoice]


@with_config(ANSWER)
class MessageAccepted(TypedDict):
    id: str
    toPhone: Annotated[str, Field(description="The recipient as it was written")]
    type: Annotated[
        Literal[KINDS], Field(description="text, image, video, document, sticker, audio, or ptt (a voice note)")
    ]  # type: ignore[valid-type]
    status: Status
    sessionId: Annotated[str, Field(description="The session that sends it")]


@with_config(ANSWER)
class Message(TypedDict):
    id: str
    sessionId: str
    direction: Literal["inbound", "outbound"]
    toPhone: Annotated[str | None, Field(description="The recipient (outbound)")]
    fromPhone: Annotated[str | None, Field(description="The sender (inbound)")]
    type: Literal[KINDS]  # type: ignore[valid-type]
    message: Annotated[str | None, Field(description="The text, or the caption")]
    status: Status
    error: str | None
    createdAt: Timestamp | None
    sentAt: Timestamp | None
    deliveredAt: Timestamp | None
    readAt: Timestamp | None


@with_config(ANSWER)
class MessageList(TypedDict):
    data: list[Message]
    total: int
    limit: int
    nextCursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page")]


# -- keys ---------------------------------------------------------------------------------------


@with_config(CLOSED)
class KeyCreate(TypedDict, total=False):
    name: Annotated[str, Field(max_length=100, pattern=NOT_BLANK, examples=["production"])]
    sessionId: Annotated[str, Field(description="Bind the key to this session: its sends go from it")]
    mode: Annotated[Literal["live", "test"], Field(description="test: sends are simulated, never sent")]


@with_config(ANSWER)
class Key(TypedDict):
    id: str
    name: str
    prefix: Annotated[str, Field(description="The key's first characters, to tell keys apart")]
    mode: Literal["live", "test"]
    sessionId: Annotated[str | None, Field(description="The session the key is bound to")]
    createdAt: Timestamp | None
    lastUsedAt: Timestamp | None


@with_config(ANSWER)
class KeyCreated(Key):
    key: Annotated[str, Field(description="The key itself: shown in this answer only")]


@with_config(ANSWER)
class KeyList(TypedDict):
    data: list[Key]
    total: int


@with_config(ANSWER)
class KeyDeleted(TypedDict):
    id: str
    deleted: Literal[True]


# -- errors -------------------------------------------------------------------------------------


@with_config(ANSWER)
class Error(TypedDict):
    """Every error: {"statusCode", "error", "message", "code"} (a field at fault as `field`)."""

    statusCode: Annotated[int, Field(description="The HTTP status, repeated", examples=[409])]
    error: Annotated[str, Field(description="A short title", examples=["Session not connected"])]
    message: Annotated[str, Field(description="What went wrong and what to do about it")]
    code: Annotated[str, Field(pattern="^[A-Z][A-Z0-9_]*$", examples=["SESSION_NOT_CONNECTED"])]


# Wamux's session stream sends the ids of wagate's Redis stream (services/events/stream.py).
LastEventId = TypedDict(
    "LastEventId",
    {
        "Last-Event-ID": NotRequired[
            Annotated[
                str,
                Field(
                    pattern="^([0-9]{1,15}-[0-9]{1,10})?$",
                    description="Resume after this event id (the `id:` of the last event received)",
                ),
            ]
        ]
    },
)
