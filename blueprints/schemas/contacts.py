"""A session's contacts, number checks and presence."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Discriminator, Field, Tag, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, CLOSED, NOT_BLANK, OPEN, Done, Limit, Page, Phone, Timestamp
from blueprints.schemas.messages import Recipient
from engines.base import PRESENCE_CHAT_STATES, PRESENCE_STATES


@with_config(CLOSED)
class ContactChange(TypedDict, total=False):
    """The owner's own name, tags and notes for a number."""

    name: Annotated[str, Field(max_length=256)] | None
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=50, pattern=NOT_BLANK)]], Field(max_length=20)]
    notes: Annotated[str, Field(max_length=5000)]


@with_config(ANSWER)
class Contact(TypedDict):
    phone: Annotated[str, Field(description="Their number; their LID's digits while WhatsApp has given none")]
    lid: Annotated[str | None, Field(description="Their LID (<digits>@lid), once WhatsApp named them by it")]
    sessionId: str
    name: str | None
    savedName: str | None
    addressBookName: str | None
    pushName: str | None
    tags: list[str]
    notes: str
    inAddressBook: bool
    lastMessageAt: Timestamp | None
    updatedAt: Timestamp | None


@with_config(ANSWER)
class ContactView(Done):
    contact: Contact


@with_config(ANSWER)
class ContactPage(Done):
    contacts: list[Contact]
    total: int
    page: int
    limit: int


@with_config(OPEN)
class ContactsQuery(TypedDict, total=False):
    search: Annotated[str, Field(description="Matches name, number, tag or notes")]
    page: Page
    limit: Annotated[Limit, Field(description="Contacts per page (default 50; above 200 counts as 200)")]


@with_config(OPEN)
class NumbersCheck(TypedDict):
    """Up to 100 numbers to check."""

    phones: Annotated[list[Phone], Field(min_length=1, max_length=100)]


@with_config(ANSWER)
class NumberCheck(TypedDict):
    phone: str
    exists: bool
    waId: Annotated[str | None, Field(description="The number's WhatsApp id when it is on WhatsApp")]
    cached: Annotated[bool, Field(description="Answered from the cache, without asking WhatsApp")]


@with_config(ANSWER)
class NumberAnswer(NumberCheck):
    success: Literal[True]


@with_config(ANSWER)
class NumberAnswers(Done):
    count: int
    results: list[NumberCheck]


@with_config(OPEN)
class ChatPresence(TypedDict):
    """Typing, recording or paused in the chat `to` (a number or a group id)."""

    state: Literal[PRESENCE_CHAT_STATES]
    to: Recipient


@with_config(OPEN)
class EveryonePresence(TypedDict):
    """Available or unavailable, to everyone (without `to`)."""

    state: Literal["available", "unavailable"]
    to: NotRequired[None]


def _audience(body: object) -> str | None:
    state = body.get("state") if isinstance(body, dict) else None
    if state in PRESENCE_CHAT_STATES:
        return "in a chat"
    return "to everyone" if state in ("available", "unavailable") else None


# Told apart by `state`, without a `discriminator` in the document: its mapping can name a
# schema once per state, which readers of the document take differently.
PresenceShow = Annotated[
    Annotated[ChatPresence, Tag("in a chat")] | Annotated[EveryonePresence, Tag("to everyone")],
    Discriminator(_audience),
]


@with_config(ANSWER)
class PresenceShown(Done):
    sessionId: str
    state: Literal[PRESENCE_STATES]
    to: NotRequired[str | None]


@with_config(OPEN)
class PresenceFollow(TypedDict):
    """The contact to follow."""

    phone: Phone


@with_config(ANSWER)
class PresenceFollowed(Done):
    sessionId: NotRequired[str]
    phone: str
