"""What the self-hosted gateway's routes take beyond the native schemas they share.

Its document is silent on a contact's upsert body and a group's create body; the obvious
shapes in its style are `{"phone", "name", "tags", "notes"}` and `{"name", "participants"}`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Required

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.contacts import ContactsQuery
from blueprints.schemas.fields import CLOSED, NOT_BLANK, OPEN, Phone

SessionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=NOT_BLANK,
        description="The session, with a personal access token (a session key names its own)",
    ),
]


@with_config(OPEN)
class SessionQuery(TypedDict, total=False):
    sessionId: SessionId


@with_config(OPEN)
class ContactsPageQuery(ContactsQuery, total=False):
    sessionId: SessionId


@with_config(CLOSED)
class ContactUpsert(TypedDict, total=False):
    """A contact to save by its number: the owner's name, tags and notes for it."""

    phone: Required[Phone]
    name: Annotated[str, Field(max_length=256)] | None
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=50, pattern=NOT_BLANK)]], Field(max_length=20)]
    notes: Annotated[str, Field(max_length=5000)]


ParticipantAction = Annotated[Literal["add", "remove"], Field(description="What to do")]
