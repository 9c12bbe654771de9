"""Messages: sending any kind, the message log, statistics, scheduled messages.

A send's kind is read from the payload (as the self-hosted gateway's API does): text by
default (`message`, as WAMessenger sends it, or `text`), or the one kind field present.
Each kind is a schema of its own, with every other kind's field left out (or null), and
the body is exactly one of them. Sends keep fields they do not know out of the way rather
than refuse them: legacy scripts send extras.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, Required, Union

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, WithJsonSchema, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from blueprints.contract.wiring import Answer
from blueprints.schemas.fields import (
    ANSWER,
    NOT_BLANK,
    OPEN,
    Caption,
    Done,
    GroupId,
    Limit,
    MessageId,
    NoCaption,
    Page,
    Phone,
    SendTime,
    ShortText,
    Text,
    Timestamp,
)
from engines.outgoing import KINDS
from models.message import MessageStatus

# Payload fields that each name a kind, in the order they are looked for.
KIND_FIELDS = ("image", "video", "audio", "voice", "document", "sticker", "location", "contact", "poll", "reaction")
MEDIA_FIELDS = ("image", "video", "audio", "voice", "document", "sticker")
CAPTIONED = ("image", "video", "document")
VIEW_ONCE = ("image", "video", "audio", "voice")
STATUSES = tuple(str(status) for status in MessageStatus)

Flag = bool | None


def _not_true(value: bool | None) -> bool | None:
    if value:
        raise PydanticCustomError("literal_error", "Input should be false")
    return value


NotTrue = Annotated[
    bool | None,
    AfterValidator(_not_true),
    WithJsonSchema({"enum": [False, None], "description": "This kind cannot be sent view-once"}),
]
Recipient = Annotated[
    Union[Phone, GroupId], Field(description="A phone number with country code, or a group id")  # noqa: UP007
]

# -- media ------------------------------------------------------------------------------------

URL_START = re.compile("^[Hh][Tt][Tt][Pp][Ss]?://")
DATA_URL = re.compile("^data:[^,]*;base64,")


def _media_source(value: str) -> str:
    """An http(s) URL or a base64 data URL (what is behind it is the media service's to check)."""
    if URL_START.match(value) or DATA_URL.match(value):
        return value
    if not value.strip():
        raise PydanticCustomError("media_required", "an http(s) URL or a base64 data URL is required")
    if value.startswith("data:"):
        raise PydanticCustomError("invalid_media", "is not a base64 data URL (data:<type>;base64,<data>)")
    raise PydanticCustomError("invalid_url", "must be an http(s) URL or a base64 data URL")


MediaSource = Annotated[
    str,
    AfterValidator(_media_source),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "uri", "maxLength": 2048, "pattern": URL_START.pattern},
                {"type": "string", "pattern": DATA_URL.pattern, "description": "A base64 data URL"},
            ]
        }
    ),
]


def _url_or_data(spec: dict) -> dict:
    if spec.get("url") is None and spec.get("data") is None:
        raise PydanticCustomError("media_required", "needs `url` or `data`: an http(s) URL or a base64 data URL")
    return spec


def _media_spec(kind: str) -> object:
    """{url | data, caption?, viewOnce?, filename? (documents), ptt? (audio)}."""
    fields: dict[str, Any] = {
        "url": NotRequired[MediaSource | None],
        "data": NotRequired[MediaSource | None],
        "caption": NotRequired[(Caption if kind in CAPTIONED else NoCaption) | None],
        "viewOnce": NotRequired[Flag if kind in VIEW_ONCE else NotTrue],
    }
    if kind == "document":
        fields["filename"] = NotRequired[
            Annotated[str, Field(pattern=NOT_BLANK, description="e.g. invoice.pdf")] | None
        ]
    if kind == "audio":
        fields["ptt"] = NotRequired[Flag]
    either = {
        "anyOf": [
            {"required": ["url"], "properties": {"url": {"type": "string"}}},
            {"required": ["data"], "properties": {"url": {"type": "null"}, "data": {"type": "string"}}},
        ]
    }
    spec = with_config(OPEN | {"json_schema_extra": either})(TypedDict(f"{kind.title()}Media", fields))
    return Annotated[
        Union[  # noqa: UP007
            Annotated[MediaSource, Tag("a URL")],
            Annotated[Annotated[spec, AfterValidator(_url_or_data)], Tag("an object")],
        ],
        Discriminator(lambda value: "a URL" if isinstance(value, str) else "an object"),
        Field(description="An http(s) URL or a data URL, or an object with `url` or `data`"),
    ]


# -- the other kinds --------------------------------------------------------------------------

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


def _coordinates(spec: dict) -> dict:
    for names in (("latitude", "lat"), ("longitude", "lng")):
        if spec.get(names[0], spec.get(names[1])) is None:
            raise PydanticCustomError("location_required", "'{name}' must be a number", {"name": names[0]})
    return spec


def _either(name: str, alias: str) -> dict:
    return {"anyOf": [{"required": [name]}, {"not": {"required": [name]}, "required": [alias]}]}


@with_config(OPEN | {"json_schema_extra": {"allOf": [_either("latitude", "lat"), _either("longitude", "lng")]}})
class Location(TypedDict, total=False):
    """A place: `latitude` (or `lat`) and `longitude` (or `lng`)."""

    latitude: Latitude
    lat: Latitude
    longitude: Longitude
    lng: Longitude
    name: ShortText | None
    address: ShortText | None


# What a contact card shows and WhatsApp links to, not a recipient: any number written with
# digits (3 to 20 of them) and + - ( ) . spaces.
CardPhone = Annotated[
    str,
    Field(pattern=r"^\s*\+?[ ().\u00a0-]*([0-9][ ().\u00a0-]*){3,20}$", examples=["919876543210", "112"]),
]


@with_config(OPEN)
class ContactCard(TypedDict):
    fullName: ShortText
    phoneNumber: CardPhone


def _distinct(options: list[str]) -> list[str]:
    if len(set(options)) != len(options):
        raise PydanticCustomError("poll_repeats", "Poll answers must be different from each other")
    return options


def _question(spec: dict) -> dict:
    if "question" not in spec and "name" not in spec:
        raise PydanticCustomError("poll_question_required", "'question' is required: the poll's question")
    return spec


@with_config(OPEN | {"json_schema_extra": _either("question", "name")})
class Poll(TypedDict, total=False):
    """A question (`question`, or `name`) and 2 to 12 different answers."""

    question: ShortText
    name: ShortText
    options: Required[
        Annotated[
            list[Annotated[str, Field(max_length=100, pattern=NOT_BLANK)]],
            Field(min_length=2, max_length=12, description="2 to 12 different answers"),
            AfterValidator(_distinct),
            WithJsonSchema(
                {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 100, "pattern": NOT_BLANK},
                    "minItems": 2,
                    "maxItems": 12,
                    "uniqueItems": True,
                    "description": "2 to 12 different answers",
                }
            ),
        ]
    ]
    multipleAnswers: bool


@with_config(OPEN)
class Reaction(TypedDict):
    messageId: Annotated[str, Field(pattern=NOT_BLANK, description="The message (ours or WhatsApp's id)")]
    emoji: Annotated[str, Field(max_length=16, description='One emoji; "" takes the reaction back')]


@with_config(OPEN)
class QuotedMessage(TypedDict):
    messageId: MessageId


Quoted = Annotated[
    Union[Annotated[MessageId, Tag("an id")], Annotated[QuotedMessage, Tag("an object")]],  # noqa: UP007
    Discriminator(lambda value: "an id" if isinstance(value, str) else "an object"),
    Field(description="Reply to this message (our id or WhatsApp's)"),
]
Mentions = Annotated[list[Phone], Field(max_length=50, description="Phone numbers mentioned in the text or caption")]

KIND_SCHEMAS: dict[str, object] = {
    **{kind: _media_spec(kind) for kind in MEDIA_FIELDS},
    "location": Annotated[Location, AfterValidator(_coordinates)],
    "contact": ContactCard,
    "poll": Annotated[Poll, AfterValidator(_question)],
    "reaction": Reaction,
}


# -- a message of one kind ----------------------------------------------------------------------


def _one_kind(body: object) -> object:
    if isinstance(body, dict):
        present = [name for name in KIND_FIELDS if body.get(name) is not None]
        if len(present) > 1:
            raise PydanticCustomError(
                "ambiguous_message", "A message has one kind; this one has {kinds}", {"kinds": ", ".join(present)}
            )
    return body


def _kind_tag(body: object) -> str:
    present = [name for name in KIND_FIELDS if isinstance(body, dict) and body.get(name) is not None]
    return f"{present[0] if present else 'text'} message"


def _text_required(body: dict) -> dict:
    if body.get("message") is None and body.get("text") is None:
        raise PydanticCustomError("message_required", "'message' is required: the text to send")
    return body


def message_kinds(prefix: str, head: dict[str, Any]) -> object:
    """Exactly one kind of message, each kind a schema named `prefix` + kind, with `head`'s fields."""
    branches = []
    for kind in (None, *KIND_FIELDS):
        fields = dict(head) | {name: NotRequired[None] for name in KIND_FIELDS if name != kind}
        extra: dict = {}
        if kind is None:
            fields |= {"message": NotRequired[Text | None], "text": NotRequired[Text | None]}
            fields["linkPreview"] = NotRequired[bool]
            extra = {
                "anyOf": [
                    {"required": ["message"], "properties": {"message": {"type": "string"}}},
                    {"required": ["text"], "properties": {"message": {"type": "null"}, "text": {"type": "string"}}},
                ]
            }
        else:
            fields[kind] = Required[KIND_SCHEMAS[kind]]
        if kind in MEDIA_FIELDS:
            # The caption is the media's own, else the body's, else the message (a
            # WAMessenger-style client adding a picture to its text).
            caption = (Caption if kind in CAPTIONED else NoCaption) | None
            fields |= {"caption": NotRequired[caption], "message": NotRequired[caption]}
            fields["viewOnce"] = NotRequired[Flag if kind in VIEW_ONCE else NotTrue]
        if kind == "audio":
            fields["ptt"] = NotRequired[Flag]
        name = f"{prefix}{(kind or 'text').title()}"
        config = OPEN | ({"json_schema_extra": extra} if extra else {})
        branch: object = with_config(config)(TypedDict(name, fields))
        if kind is None:
            branch = Annotated[branch, AfterValidator(_text_required)]
        branches.append(Annotated[branch, Tag(f"{kind or 'text'} message")])
    return Annotated[
        Union[tuple(branches)],  # noqa: UP007
        Discriminator(_kind_tag),
        BeforeValidator(_one_kind),
        Field(
            description="Text by default (`message`, as WAMessenger sends it, or `text`), or the one kind field "
            "present: image, video, audio (`ptt: true`, or `voice`, for a voice note), document, sticker, location, "
            "contact, poll or reaction. A media message's caption is its `caption` (or the body's, or `message`)."
        ),
    ]


SEND_HEAD = {
    "to": Required[Recipient],
    "sendAt": NotRequired[SendTime | None],
    "quoted": NotRequired[Quoted | None],
    "mentions": NotRequired[Mentions | None],
}
SendMessage = message_kinds("Send", SEND_HEAD)


def _explicit_media(kind: str) -> object:
    fields: dict[str, Any] = SEND_HEAD | {
        "mediaType": Required[Literal[kind]],
        "mediaUrl": Required[MediaSource],
        "caption": NotRequired[(Caption if kind in CAPTIONED else NoCaption) | None],
        "viewOnce": NotRequired[Flag if kind in VIEW_ONCE else NotTrue],
    }
    if kind == "document":
        fields["filename"] = NotRequired[Annotated[str, Field(pattern=NOT_BLANK)] | None]
    return with_config(OPEN)(TypedDict(f"Upload{kind.title()}", fields))


EXPLICIT_MEDIA = ("image", "video", "document", "sticker")


def _media_type(body: object) -> str | None:
    kind = body.get("mediaType") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None


SendMedia = Annotated[
    Union[tuple(Annotated[_explicit_media(kind), Tag(kind)] for kind in EXPLICIT_MEDIA)],  # noqa: UP007
    Discriminator(_media_type),
]


@with_config(OPEN)
class SendAudio(TypedDict, total=False):
    """Wamux's audio form: `ptt: true` sends a voice note (Ogg Opus)."""

    to: Required[Recipient]
    sendAt: SendTime | None
    quoted: Quoted | None
    mentions: Mentions | None
    audioUrl: Required[MediaSource]
    ptt: Flag
    viewOnce: Flag


IdempotencyKey = TypedDict(
    "IdempotencyKey",
    {
        "Idempotency-Key": NotRequired[
            Annotated[
                str,
                Field(
                    max_length=255,
                    description="Repeat a request with the same key to get the first message back instead of "
                    "sending again",
                ),
            ]
        ]
    },
)


@with_config(OPEN)
class Reschedule(TypedDict):
    """When the scheduled message goes instead."""

    sendAt: SendTime


# -- answers ------------------------------------------------------------------------------------


@with_config(ANSWER)
class Sent(TypedDict):
    success: bool
    message: Annotated[str, Field(examples=["Message sent successfully"])]
    messageId: str
    status: Literal[STATUSES]
    to: str
    simulated: NotRequired[Annotated[bool, Field(description="Present (true) for a test key's send: nothing was sent")]]
    sendAt: NotRequired[Annotated[Timestamp, Field(description="When a scheduled message goes (status `scheduled`)")]]


@with_config(ANSWER)
class SendFailure(TypedDict):
    """An error; when the message was accepted and then failed on WhatsApp's side it also
    carries `success: false`, `messageId`, `status: failed`, `quotaRefunded` and `retryable`."""

    error: str
    message: str
    code: Annotated[str, Field(pattern="^[A-Z][A-Z0-9_]*$")]
    field: NotRequired[str]
    success: NotRequired[Literal[False]]
    messageId: NotRequired[str]
    status: NotRequired[Literal["failed"]]
    quotaRefunded: NotRequired[bool]
    retryable: NotRequired[bool]


QUOTA_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
SEND_ANSWERS = (
    Answer(200, "Sent", Sent, QUOTA_HEADERS),
    Answer(202, "Accepted and queued; message_status events follow", Sent, QUOTA_HEADERS),
    Answer(400, "Invalid request parameters, or refused by WhatsApp", SendFailure, QUOTA_HEADERS),
    Answer(502, "WhatsApp's side failed", SendFailure, QUOTA_HEADERS),
    Answer(503, "Service unavailable; try again", SendFailure, (*QUOTA_HEADERS, "Retry-After")),
    Answer(504, "Timed out waiting for WhatsApp or the engine host", SendFailure, QUOTA_HEADERS),
    Answer(429, "Rate limit or quota exceeded", SendFailure, (*QUOTA_HEADERS, "Retry-After")),
)
SEND_ERRORS = (401, 402, 403, 404, 409, 413, 415)


# A message is `to` its recipient or `from` its sender; `from` is a Python keyword, hence the
# functional form.
Message = with_config(ANSWER)(
    TypedDict(
        "Message",
        {
            "messageId": str,
            "sessionId": str,
            "batchId": str | None,
            "direction": Literal["inbound", "outbound"],
            "to": NotRequired[Annotated[str, Field(description="The recipient (outbound messages)")]],
            "from": NotRequired[Annotated[str, Field(description="The sender (inbound messages)")]],
            "message": Annotated[str, Field(description="The text, a caption, or what the message is")],
            "type": Literal[KINDS],
            "content": NotRequired[
                Annotated[
                    dict[str, Any], Field(description="The kind's details beyond text (media facts, location...)")
                ]
            ],
            "mediaUrl": NotRequired[
                Annotated[str, Field(description="Where its file is served (GET /api/messages/{id}/media)")]
            ],
            "status": Literal[STATUSES],
            "error": str | None,
            "errorCode": str | None,
            "waMessageId": str | None,
            "createdAt": Timestamp,
            "sentAt": Timestamp | None,
            "deliveredAt": Timestamp | None,
            "readAt": Timestamp | None,
            "playedAt": Timestamp | None,
            "failedAt": Timestamp | None,
            "stalledAt": NotRequired[
                Annotated[Timestamp, Field(description="When the delivery watchdog found it stuck (once)")]
            ],
            "stallReason": NotRequired[Annotated[str, Field(description="Why: no_server_ack or no_delivery_receipt")]],
            "history": NotRequired[Annotated[bool, Field(description="From a backfill of the phone's history")]],
        },
    )
)


@with_config(ANSWER)
class ScheduledMessage(Message):
    sendAt: Timestamp | None


@with_config(ANSWER)
class Scheduled(ScheduledMessage):
    success: Literal[True]


@with_config(ANSWER)
class MessagePage(Done):
    messages: list[Message]
    total: int
    page: int | None
    limit: int
    nextCursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page")]


@with_config(ANSWER)
class FailedMessage(TypedDict):
    id: str
    recipient: str
    error: str | None
    code: NotRequired[str | None]
    timestamp: Timestamp | None
    message: Annotated[str, Field(description="The first 26 characters of the text")]
    sessionId: NotRequired[str]


@with_config(ANSWER)
class FailedList(Done):
    count: int
    messages: list[FailedMessage]


@with_config(ANSWER)
class ScheduledList(Done):
    count: int
    messages: list[ScheduledMessage]


DayCounts = Annotated[list[int], Field(min_length=7, max_length=7)]


@with_config(ANSWER)
class Totals(TypedDict):
    sent: int
    delivered: int
    read: int
    failed: int
    total: int
    received: NotRequired[int]


@with_config(ANSWER)
class Chart(TypedDict):
    labels: Annotated[list[str], Field(min_length=7, max_length=7)]
    sent: DayCounts
    delivered: DayCounts
    read: DayCounts
    failed: DayCounts


@with_config(ANSWER)
class Stats(Done):
    totals: Totals
    chart: Chart


MediaFile = Annotated[bytes, WithJsonSchema({"type": "string", "contentMediaType": "application/octet-stream"})]

# -- queries ----------------------------------------------------------------------------------


def _iso_time(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PydanticCustomError("invalid_time", "must be an ISO 8601 time like 2026-11-23T10:00:00Z") from None
    return value


IsoTime = Annotated[str, AfterValidator(_iso_time), WithJsonSchema({"type": "string", "format": "date-time"})]


@with_config(OPEN)
class MessagesQuery(TypedDict, total=False):
    sessionId: Annotated[str, Field(description="Only this session's")]
    chat: Annotated[Recipient, Field(description="Only the chat with this number, or this group's")]
    direction: Annotated[Literal["inbound", "outbound"], Field(description="inbound or outbound")]
    status: Annotated[Literal[STATUSES], Field(description="Only messages in this status")]
    type: Annotated[Literal[KINDS], Field(description="Only this kind")]
    since: Annotated[IsoTime, Field(description="From this time (inclusive, ISO 8601)")]
    until: Annotated[IsoTime, Field(description="Before this time (ISO 8601)")]
    cursor: Annotated[str, Field(description="The `nextCursor` of the page before")]
    page: Annotated[Page, Field(description="Page number, when not paging by cursor")]
    limit: Annotated[Limit, Field(description="Messages per page (default 50; above 200 counts as 200)")]


@with_config(OPEN)
class FailedQuery(TypedDict, total=False):
    limit: Annotated[Limit, Field(description="How many (default 5; above 100 counts as 100)")]


@with_config(OPEN)
class ScheduledQuery(TypedDict, total=False):
    sessionId: Annotated[str, Field(description="Only this session's")]
    limit: Annotated[Limit, Field(description="How many (default 100; above 500 counts as 500)")]
