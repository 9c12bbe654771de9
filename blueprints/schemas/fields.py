"""The field types the native schemas share, and the error every route answers with."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal, NotRequired

from pydantic import BeforeValidator, ConfigDict, Field, with_config
from typing_extensions import TypedDict

# How a request schema treats fields it does not know: refused (the field is named), or
# dropped, where legacy scripts send extras (sends).
CLOSED = ConfigDict(extra="forbid", allow_inf_nan=False)
OPEN = ConfigDict(extra="ignore", allow_inf_nan=False)
# Answers: a key the schema leaves out is a bug (the document would say less than the server).
ANSWER = ConfigDict(extra="forbid")

# Text that is not only whitespace (Python's, which the server strips).
NOT_BLANK = "[^" + "".join(f"\\u{code:04x}" for code in range(0x10000) if chr(code).isspace()) + "]"


def _whole(value: object) -> object:
    """A JSON whole number: JSON has no integer type, so 12.0 is 12 (12.5 is not)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def whole(*, ge: int | None = None, le: int | None = None, **extra) -> object:
    """An integer field that also takes 12.0 (not 12.5, "12" or true)."""
    return Annotated[int, Field(ge=ge, le=le, **extra), BeforeValidator(_whole)]


Text = Annotated[
    str,
    Field(max_length=4096, pattern=NOT_BLANK, description="The text; not only whitespace", examples=["Hello!"]),
]
ShortText = Annotated[str, Field(max_length=256, pattern=NOT_BLANK, description="Not only whitespace")]
Caption = Annotated[str, Field(max_length=1024)]
NoCaption = Annotated[str, Field(max_length=0, description="This kind has no caption")]
MessageId = Annotated[str, Field(pattern=NOT_BLANK)]
# A phone number with its country code; '+', spaces, dashes, dots and brackets are tolerated.
# Whether it is a real number is checked per country (the `phone` format), which no pattern says.
Phone = Annotated[
    str,
    Field(
        min_length=8,
        description="Phone number with country code, e.g. 919876543210 ('+', spaces and dashes are tolerated)",
        examples=["919876543210"],
        json_schema_extra={"format": "phone"},
    ),
]
GROUP_ID_PATTERN = r"^\s*[0-9]{5,25}(-[0-9]{5,15})?@g\.us\s*$"
GroupId = Annotated[
    str, Field(pattern=GROUP_ID_PATTERN, description="A WhatsApp group id", examples=["120363025246125888@g.us"])
]
# The phone to link: 8 to 15 digits with the country code ('+', spaces, dashes, brackets allowed).
PairingPhone = Annotated[str, Field(pattern=r"^[+ ()-]*([0-9][+ ()-]*){8,15}$", examples=["919876543210"])]
Url = Annotated[
    str,
    Field(max_length=2048, pattern="^[Hh][Tt][Tt][Pp][Ss]?://", json_schema_extra={"format": "uri"}),
]
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"}, examples=["2024-01-15T10:30:00.000Z"])]
# The example `sendAt`: tomorrow at 09:30 in India, as of the document's making, so the
# example a reader (or a fuzzer) sends stays a valid time, ahead and within the year.
_IST = timezone(timedelta(hours=5, minutes=30))
SEND_TIME_EXAMPLE = (datetime.now(_IST) + timedelta(days=1)).replace(hour=9, minute=30, second=0, microsecond=0)
SendTime = Annotated[
    str,
    Field(
        description="Send it then (within a year) instead of now; a time just past sends now",
        examples=[SEND_TIME_EXAMPLE.isoformat()],
        json_schema_extra={"format": "date-time"},
    ),
]
SessionStatus = Literal["connecting", "pending", "connected", "reconnecting", "disconnected", "error"]
Limit = Annotated[int, Field(ge=1)]
Page = Annotated[int, Field(ge=1, description="Page number (from 1)")]


@with_config(ANSWER)
class Error(TypedDict):
    """Every error: {"error", "message", "code"} (some add details such as `field`)."""

    error: Annotated[str, Field(description="A short title", examples=["Session not found"])]
    message: Annotated[str, Field(description="What went wrong and what to do about it")]
    code: Annotated[str, Field(pattern="^[A-Z][A-Z0-9_]*$", examples=["SESSION_NOT_FOUND"])]
    field: NotRequired[Annotated[str, Field(description="The request field at fault, when there is one")]]


class Done(TypedDict):
    """`{"success": true}`, the start of most answers that are not WAMessenger's own."""

    success: Literal[True]
