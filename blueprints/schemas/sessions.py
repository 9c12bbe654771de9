"""Sessions: creating, renaming, pairing, their status, pace and live events."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import AfterValidator, Field, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from blueprints.schemas.fields import (
    ANSWER,
    CLOSED,
    NOT_BLANK,
    Done,
    PairingPhone,
    SessionStatus,
    Timestamp,
    whole,
)
from services.events.cursor import CURSOR_PATTERN
from services.events.stream import STREAMED

Name = Annotated[str, Field(max_length=100)]
PairUrl = Annotated[
    str | None,
    Field(
        description="Simulator only: the URL the QR code encodes; a POST to it is the simulated phone scanning the "
        'code (`{"phone"}` optional)',
        json_schema_extra={"format": "uri"},
    ),
]
Description = Annotated[str, Field(max_length=500)]


@with_config(CLOSED)
class SessionCreate(TypedDict, total=False):
    """A new session (both fields may be left out)."""

    name: Annotated[Name | None, Field(description="Defaults to My Session")]
    description: Description | None


def _something(changes: dict) -> dict:
    if not changes:
        raise PydanticCustomError("empty_update", "Nothing to change: send 'name' and/or 'description'")
    return changes


@with_config(CLOSED | {"json_schema_extra": {"minProperties": 1}})
class SessionFields(TypedDict, total=False):
    """What to change: its name, its description, or both."""

    name: Annotated[str, Field(max_length=100, pattern=NOT_BLANK)]
    description: Description


SessionChange = Annotated[SessionFields, AfterValidator(_something)]


@with_config(CLOSED)
class PairCodeRequest(TypedDict):
    """The phone to link by number."""

    phone: PairingPhone


@with_config(ANSWER)
class Session(TypedDict):
    sessionId: str
    name: str
    description: str | None
    phone: str | None
    status: SessionStatus
    hasQR: bool
    messagesSent: int
    messagesReceived: int
    createdAt: Timestamp


@with_config(ANSWER)
class SessionDetail(Session):
    statusReason: str | None
    connectedAt: Timestamp | None
    updatedAt: Timestamp | None
    host: Annotated[
        str | None,
        Field(description="The engine host that holds the session (None until one has taken it up)"),
    ]
    deafCount: Annotated[int, Field(description="How often the session was found deaf and reconnected")]
    deafSince: Annotated[
        Timestamp | None, Field(description="Since when it is deaf and being reconnected (None while it hears)")
    ]


@with_config(ANSWER)
class SessionState(TypedDict):
    sessionId: str
    status: SessionStatus
    phone: str | None
    hasQR: bool
    reason: str | None


@with_config(ANSWER)
class SessionList(TypedDict):
    sessions: list[Session]
    total: int


@with_config(ANSWER)
class SessionCreated(Done):
    sessionId: str
    name: str
    status: SessionStatus
    message: str


@with_config(ANSWER)
class SessionChanged(Done):
    session: SessionDetail


@with_config(ANSWER)
class SessionDeleted(Done):
    sessionId: str
    message: NotRequired[str]


@with_config(ANSWER)
class SessionActed(Done):
    sessionId: str
    status: NotRequired[SessionStatus]
    message: str


@with_config(ANSWER)
class QrCode(TypedDict):
    qrCode: Annotated[str, Field(pattern="^data:image/png;base64,")] | None
    status: SessionStatus
    expiresAt: Timestamp | None
    message: NotRequired[Annotated[str, Field(description="Why there is no QR code to scan")]]
    reason: NotRequired[str | None]
    pairUrl: NotRequired[PairUrl]


@with_config(ANSWER)
class PairCode(Done):
    sessionId: str
    code: Annotated[str, Field(examples=["ABCD-EFGH"])]
    message: str


@with_config(ANSWER)
class StreamEvent(TypedDict):
    """One event of the stream."""

    id: NotRequired[
        Annotated[
            str,
            Field(
                pattern=CURSOR_PATTERN,
                description="The event's cursor (GET /api/events): send it back as Last-Event-ID",
            ),
        ]
    ]
    event: Literal[tuple(sorted(STREAMED))]
    data: Annotated[
        str, Field(description="The Socket.IO payload", json_schema_extra={"contentMediaType": "application/json"})
    ]
    retry: NotRequired[int]


LastEventId = TypedDict(
    "LastEventId",
    {
        "Last-Event-ID": NotRequired[
            Annotated[
                str,
                Field(
                    pattern="^([0-7][0-9a-f]{15}|[0-9]{1,15}-[0-9]{1,10})?$",
                    description="Resume after this event id (the `id:` of the last event received)",
                ),
            ]
        ]
    },
)


# -- pace -------------------------------------------------------------------------------------

Seconds = Annotated[float, Field(ge=0, le=3600)]
Count = whole(ge=1, le=100_000)
Clock = Annotated[str, Field(pattern="^([01]?[0-9]|2[0-3]):[0-5]?[0-9]$", examples=["21:00"])]


@with_config(CLOSED)
class PaceChange(TypedDict, total=False):
    """Any of the settings; null restores a default (for the quiet hours: none)."""

    minGapSeconds: Seconds | None
    jitterSeconds: Seconds | None
    perMinute: Count | None
    perDay: Count | None
    warmup: Annotated[list[whole(ge=1)], Field(max_length=60, description="Daily ceilings")] | None
    quietStart: Clock | None
    quietEnd: Clock | None
    timezone: Annotated[str, Field(description="An IANA time zone", examples=["Asia/Kolkata"])] | None
    typing: bool | None


@with_config(ANSWER)
class Pace(TypedDict):
    minGapSeconds: float
    jitterSeconds: float
    perMinute: int
    perDay: int
    warmup: list[int]
    quietStart: str | None
    quietEnd: str | None
    timezone: str
    typing: bool


@with_config(ANSWER)
class SendQueue(TypedDict):
    depth: int
    scheduled: int
    lanes: Annotated[int, Field(description="How many lanes (the API's, each batch's) wait")]
    nextSendAt: Timestamp | None
    waitingFor: str | None
    sentLastMinute: int
    sentToday: int
    todayCap: int
    warmupDay: Annotated[int | None, Field(description="1 on the day the phone was linked, while the warm-up lasts")]


@with_config(ANSWER)
class PaceView(Done):
    sessionId: str
    pace: Pace
    queue: SendQueue
    paused: bool
    pausedAt: Timestamp | None
    pausedReason: str | None
