"""The simulator engine's controls: faults, pairing, a contact's messages and presence."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, Required, Union

from pydantic import Discriminator, Field, Tag, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, CLOSED, NOT_BLANK, OPEN, Done, GroupId, PairingPhone, Phone, SessionStatus
from blueprints.schemas.messages import Mentions, Quoted, message_kinds
from engines.base import PRESENCE_SEEN
from engines.simulator import FAULTS

FaultSwitches = with_config(CLOSED | {"json_schema_extra": {"examples": [{"disconnect": True}]}})(
    TypedDict("FaultSwitches", {name: NotRequired[bool] for name in FAULTS})
)
FaultSwitches.__doc__ = "Faults to switch on (true) or off (false)."


@with_config(ANSWER)
class FaultState(TypedDict):
    scope: Annotated[str, Field(description="The session id, or * for every session")]
    faults: list[Literal[FAULTS]]


@with_config(OPEN)
class FaultScope(TypedDict, total=False):
    sessionId: Annotated[
        str, Field(description="One session's faults (its owner's); without it, every session's (admins)")
    ]


@with_config(OPEN)
class Vote(TypedDict):
    messageId: str
    options: list[str]


# `from` is a Python keyword, hence the functional forms.
InboundVote = with_config(OPEN)(TypedDict("InboundVote", {"from": Phone, "vote": Vote}))
InboundVote.__doc__ = "A vote on one of the session's polls."
InboundMessage = message_kinds(
    "Inbound",
    {
        "from": Required[Phone],
        "quoted": NotRequired[Quoted | None],
        "mentions": NotRequired[Mentions | None],
        "vote": NotRequired[None],
    },
)
Inbound = Annotated[
    Union[Annotated[InboundVote, Tag("a vote")], Annotated[InboundMessage, Tag("a message")]],  # noqa: UP007
    Discriminator(lambda body: "a vote" if isinstance(body, dict) and body.get("vote") is not None else "a message"),
    Field(description="`from` plus any payload a send takes, or a vote on one of the session's polls"),
]


@with_config(OPEN)
class AddressBookEntry(TypedDict):
    phone: Phone
    name: NotRequired[Annotated[Any, Field(description="Shown as text")]]


@with_config(OPEN)
class AddressBook(TypedDict):
    """The simulated phone's address book."""

    contacts: Annotated[list[AddressBookEntry], Field(max_length=5000)]


ContactPresence = with_config(OPEN)(
    TypedDict(
        "ContactPresence",
        {
            "from": Phone,
            "state": Literal[PRESENCE_SEEN],
            "chat": NotRequired[Annotated[GroupId | None, Field(description="The group the contact types in")]],
        },
    )
)
ContactPresence.__doc__ = "A contact's presence, and the group they type in."


@with_config(OPEN)
class PairScan(TypedDict, total=False):
    """The simulated phone's number (without it, one made from the session id)."""

    phone: PairingPhone | None


@with_config(OPEN)
class PairCodeEntry(TypedDict):
    """The pairing code the session gave."""

    code: Annotated[str, Field(pattern=NOT_BLANK)]


@with_config(ANSWER)
class Accepted(Done):
    sessionId: str
    message: NotRequired[str]


@with_config(ANSWER)
class AddressBookSyncing(Done):
    sessionId: NotRequired[str]
    count: int


@with_config(ANSWER)
class Paired(Done):
    sessionId: str
    status: SessionStatus
    phone: NotRequired[str | None]
    message: NotRequired[str]
