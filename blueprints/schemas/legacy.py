"""WAMessenger's single-session API (/api/whatsapp/*) and bulk sends."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, OPEN, Done, Phone, SendTime, SessionStatus, Text, Timestamp
from blueprints.schemas.sessions import PairUrl, SessionState


@with_config(OPEN)
class LegacySend(TypedDict):
    """A text from the default session."""

    number: Phone
    message: Text


@with_config(OPEN)
class BulkSend(TypedDict):
    """One text to many contacts."""

    contacts: Annotated[
        list[Any],
        Field(
            min_length=1,
            description="Phone numbers, or objects with a `number`; an invalid or repeated one is reported in its "
            "result, not refused (at most BULK_MAX_CONTACTS, 10000 by default)",
            examples=[["919876543210", {"number": "919876543211"}]],
        ),
    ]
    message: Text
    sendAt: NotRequired[SendTime | None]
    delay: NotRequired[
        Annotated[float, Field(ge=0, le=86_400_000, description="Milliseconds between sends (default 2000)")] | None
    ]


@with_config(ANSWER)
class LegacyInitialized(Done):
    sessionId: str
    status: SessionStatus
    message: str


@with_config(ANSWER)
class LegacyQr(TypedDict):
    qrCode: Annotated[str, Field(pattern="^data:image/png;base64,")] | None
    status: SessionStatus
    expiresAt: Timestamp | None
    sessionId: str
    pairUrl: NotRequired[PairUrl]


@with_config(ANSWER)
class LegacyStatus(SessionState):
    success: Literal[True]
    connected: bool


@with_config(ANSWER)
class BulkResult(TypedDict):
    contact: Annotated[Any, Field(description="The contact as given: a number, or the JSON value refused")]
    success: NotRequired[bool]
    status: Literal["Sent", "Failed", "Pending", "Cancelled"]
    error: NotRequired[str | None]
    messageId: NotRequired[str]


@with_config(ANSWER)
class BulkReport(Done):
    batchId: str
    sessionId: NotRequired[str]
    status: Literal["scheduled", "running", "finished", "cancelled"]
    sendAt: NotRequired[Annotated[Timestamp, Field(description="When a scheduled batch starts")]]
    delay: NotRequired[Annotated[int, Field(description="Milliseconds between sends, after the server's floor")]]
    createdAt: NotRequired[Timestamp | None]
    finishedAt: NotRequired[Timestamp | None]
    total: int
    sent: int
    failed: int
    pending: int
    results: list[BulkResult]
    progressUrl: NotRequired[
        Annotated[str, Field(description="Where a long batch's progress is (202)", json_schema_extra={"format": "uri"})]
    ]
    simulated: NotRequired[bool]
