"""aulm's requests and answers, by its document's field names."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, OPEN, Caption, Phone, SessionStatus, Text
from blueprints.schemas.messages import MediaSource

SessionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="The session's id, from the dashboard",
        examples=["f1e2d3c4-5678-4abc-9def-0123456789ab"],
    ),
]
Image = Annotated[
    MediaSource,
    Field(
        description="The image: a data URL (data:image/png;base64,…) or an http(s) URL",
        examples=["data:image/png;base64,iVBORw0KGgoAAAANSUhEUg..."],
    ),
]
RequestId = Annotated[str, Field(description="This request's id; also the x-request-id header")]


@with_config(OPEN)
class SendText(TypedDict):
    """A text message."""

    session_id: SessionId
    to: Phone
    body: Text


@with_config(OPEN)
class SendImage(TypedDict):
    """An image, with an optional caption."""

    session_id: SessionId
    to: Phone
    image: Image
    caption: Annotated[Caption | None, Field(default=None, description="Shown under the image")]


@with_config(ANSWER)
class Sent(TypedDict):
    message_id: Annotated[str, Field(description="The message's id; sim_… for a test key's simulated send")]
    session_id: str
    to: Annotated[str, Field(description="The recipient, with its country code", examples=["+14155551234"])]
    status: Annotated[
        Literal["queued", "sent", "delivered", "read", "played"],
        Field(description="sent once WhatsApp took it; queued while it waits its turn"),
    ]
    simulated: Annotated[bool, Field(description="true for a test key's send: nothing was sent")]


@with_config(ANSWER)
class SentAnswer(TypedDict):
    data: Sent
    request_id: RequestId


@with_config(ANSWER)
class Status(TypedDict):
    session_id: str
    status: SessionStatus


@with_config(ANSWER)
class StatusAnswer(TypedDict):
    data: Status
    request_id: RequestId


@with_config(ANSWER)
class Problem(TypedDict):
    code: Annotated[str, Field(pattern="^[a-z][a-z0-9_]*$", examples=["session_not_ready"])]
    message: Annotated[str, Field(description="What went wrong and what to do about it")]


@with_config(ANSWER)
class Error(TypedDict):
    """Every error: {"error": {"code", "message"}}."""

    error: Problem
