"""The event log: a page of a user's events after a cursor."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, OPEN, Done, Limit, Timestamp
from services.events.cursor import CURSOR_PATTERN
from services.events.log import TYPES

Cursor = Annotated[str, Field(pattern=CURSOR_PATTERN, examples=["00000000000004d2"])]


def _types(value: str) -> list[str]:
    """A comma-separated list of event types, each known."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in TYPES]
    if unknown or not names:
        raise PydanticCustomError(
            "invalid_types", "'types' must be event types separated by commas: " + ", ".join(TYPES)
        )
    return list(dict.fromkeys(names))


Types = Annotated[
    str,
    AfterValidator(_types),
    WithJsonSchema({"type": "string", "pattern": f"^({'|'.join(TYPES)})(,({'|'.join(TYPES)}))*$"}),
]


@with_config(OPEN)
class EventsQuery(TypedDict, total=False):
    after: Annotated[Cursor, Field(description="Only events after this cursor (the `next` of the page before)")]
    types: Annotated[Types, Field(description="Only these event types, separated by commas (message,message_status)")]
    sessionId: Annotated[str, Field(description="Only this session's")]
    limit: Annotated[Limit, Field(description="Events per page (default 100; above 1000 counts as 1000)")]


@with_config(ANSWER)
class Event(TypedDict):
    id: Annotated[Cursor, Field(description="Its cursor: cursors sort as text in the order events happened")]
    type: Annotated[Literal[TYPES], Field(description="The Socket.IO event (and SSE `event:`) it went out as")]
    sessionId: str | None
    createdAt: Timestamp
    data: Annotated[dict[str, Any], Field(description="Its payload, as Socket.IO clients received it")]


@with_config(ANSWER)
class EventPage(Done):
    events: list[Event]
    next: Annotated[Cursor, Field(description="Ask `after` this next time (the last event's cursor, or `after`)")]
    hasMore: Annotated[bool, Field(description="More events wait after `next`: ask again at once")]
