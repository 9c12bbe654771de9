"""What Wallm's routes take and answer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, OPEN, Phone, Text
from models.message import MessageStatus


@with_config(OPEN)
class SendText(TypedDict):
    """A text message: `to` a phone number with its country code, `text` to send."""

    to: Phone
    text: Text


@with_config(ANSWER)
class TextSent(TypedDict):
    """The message as it now stands: sent (200) or still queued (202)."""

    id: Annotated[str, Field(description="The message's id")]
    sessionId: str
    to: Annotated[str, Field(description="The recipient, digits with country code")]
    status: Annotated[
        Literal[tuple(str(status) for status in MessageStatus)],  # type: ignore[misc]
        Field(description="pending or queued until sent; sent, delivered, read"),
    ]
    simulated: Annotated[bool, Field(description="A test key's send: simulated, never sent")]
