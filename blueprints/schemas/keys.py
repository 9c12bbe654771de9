"""API keys: creating, listing and revoking them."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, CLOSED, NOT_BLANK, Done, Timestamp


@with_config(CLOSED)
class KeyCreate(TypedDict):
    """A new key: live or test, for every session or only some, until a time or for good."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NOT_BLANK, examples=["Billing server"])]
    mode: NotRequired[Literal["live", "test"] | None]
    sessionIds: NotRequired[Annotated[list[str], Field(description="Limit the key to these sessions")] | None]
    expiresAt: NotRequired[
        Annotated[
            str | None,
            Field(
                description='When it stops working (a time in the future); null or "": never',
                json_schema_extra={
                    "anyOf": [{"type": "string", "format": "date-time"}, {"const": ""}, {"type": "null"}]
                },
            ),
        ]
    ]


@with_config(ANSWER)
class ApiKey(TypedDict):
    id: str
    name: str
    mode: Literal["live", "test"]
    prefix: Annotated[str, Field(examples=["wag_live_3f9a"])]
    sessionIds: Annotated[list[str], Field(description="The sessions the key may use (empty: all)")]
    expiresAt: Timestamp | None
    lastUsedAt: Timestamp | None
    createdAt: Timestamp
    revoked: bool
    revokedAt: Timestamp | None


@with_config(ANSWER)
class KeyCreated(ApiKey):
    success: Literal[True]
    message: str
    key: Annotated[str, Field(pattern="^wag_(live|test)_[0-9a-f]{64}$")]


@with_config(ANSWER)
class KeyList(Done):
    keys: list[ApiKey]
    total: int


@with_config(ANSWER)
class KeyRevoked(Done):
    message: NotRequired[str]
    key: ApiKey
