"""A session's chats and the backfill of a chat's history."""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import Discriminator, Field, Tag, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, CLOSED, OPEN, Done, Limit, Page, whole
from blueprints.schemas.messages import IsoTime, Message

Notify = Annotated[bool, Field(description="Also send each message as a `message` event (default false)")]


@with_config(CLOSED)
class HistoryByCount(TypedDict):
    """The `count` messages before the oldest one stored."""

    count: whole(ge=1, le=1000, description="How many older messages to fetch (1 to 1000)")
    notify: NotRequired[Notify]


@with_config(CLOSED)
class HistorySince(TypedDict):
    """Every message from a time on."""

    since: Annotated[IsoTime, Field(description="Fetch every message from this time (ISO 8601)")]
    notify: NotRequired[Notify]


def _asked(body: object) -> str | None:
    if not isinstance(body, dict) or ("count" in body) == ("since" in body):
        return None
    return "count" if "count" in body else "since"


# Either `count` or `since`, told apart by which one the body has.
HistoryRequest = Annotated[
    Annotated[HistoryByCount, Tag("count")] | Annotated[HistorySince, Tag("since")], Discriminator(_asked)
]


@with_config(ANSWER)
class HistoryRequested(Done):
    requestId: str
    sessionId: str
    chat: str
    notify: bool
    count: int | None
    since: str | None


@with_config(ANSWER)
class Chat(TypedDict):
    chat: Annotated[str, Field(description="The contact's number, or the group's id")]
    isGroup: bool
    name: str | None
    lid: Annotated[str | None, Field(description="The contact's LID, when known")]
    unreadCount: Annotated[int, Field(description="The contact's live messages since the session last wrote there")]
    lastMessage: Message


@with_config(ANSWER)
class ChatPage(Done):
    chats: list[Chat]
    total: int
    page: int
    limit: int


@with_config(OPEN)
class ChatsQuery(TypedDict, total=False):
    page: Page
    limit: Annotated[Limit, Field(description="Chats per page (default 50; above 200 counts as 200)")]
