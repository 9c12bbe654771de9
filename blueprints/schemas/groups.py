"""The groups a session's phone is in."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, NOT_BLANK, OPEN, Done, Phone

ACTIONS = ("add", "remove", "promote", "demote")
GroupAction = Annotated[Literal[ACTIONS], Field(description="What to do")]
Participants = Annotated[list[Phone], Field(min_length=1, max_length=256)]


@with_config(OPEN)
class GroupCreate(TypedDict):
    """A new group: its name and who is in it (the session's phone creates it)."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NOT_BLANK)]
    participants: Participants


@with_config(OPEN)
class ParticipantsChange(TypedDict):
    """The participants to add, remove, promote or demote."""

    participants: Participants


@with_config(ANSWER)
class Participant(TypedDict):
    phone: str
    role: Literal["member", "admin", "superadmin"]
    lid: NotRequired[Annotated[str, Field(description="Their LID (<digits>@lid), when WhatsApp gave it")]]


@with_config(ANSWER)
class Group(TypedDict):
    id: Annotated[str, Field(pattern=r"^[0-9]{5,25}(-[0-9]{5,15})?@g\.us$", examples=["120363025246125888@g.us"])]
    name: str
    topic: NotRequired[str | None]
    owner: NotRequired[str | None]
    createdAt: NotRequired[str | None]
    participants: list[Participant]


@with_config(ANSWER)
class GroupList(Done):
    count: int
    groups: list[Group]


@with_config(ANSWER)
class GroupView(Done):
    group: Group


@with_config(ANSWER)
class ParticipantList(Done):
    count: int
    participants: list[Participant]


@with_config(ANSWER)
class ParticipantResult(TypedDict):
    phone: str
    ok: bool
    reason: NotRequired[str]


@with_config(ANSWER)
class ParticipantResults(Done):
    results: list[ParticipantResult]


@with_config(ANSWER)
class InviteLink(Done):
    inviteLink: Annotated[str, Field(examples=["https://chat.whatsapp.com/AbCdEf123"])]


@with_config(ANSWER)
class GroupLeft(Done):
    groupId: str
    message: NotRequired[str]
