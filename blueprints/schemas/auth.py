"""Accounts: registering, logging in, the account and its quota."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, OPEN, Done, Timestamp


@with_config(OPEN)
class Registration(TypedDict):
    """A new account."""

    email: Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"})]
    password: Annotated[str, Field(min_length=8, max_length=1024)]
    username: NotRequired[Annotated[str, Field(max_length=64, description="Defaults to the email's local part")] | None]


@with_config(OPEN)
class Credentials(TypedDict):
    """An email and its password."""

    email: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1)]


@with_config(ANSWER)
class User(TypedDict):
    userId: str
    email: str
    username: str


@with_config(ANSWER)
class Plan(TypedDict):
    id: str
    name: str
    priceInr: int
    maxSessions: int
    apiRateLimit: Annotated[str, Field(examples=["100 per 15 minutes"])]
    features: list[str]
    dailyMessageLimit: int | None
    trialMessageLimit: int | None
    trialDays: int | None


@with_config(ANSWER)
class Account(User):
    isAdmin: bool
    plan: Plan
    createdAt: Timestamp


@with_config(ANSWER)
class Quota(TypedDict):
    period: Literal["day", "trial"]
    limit: Annotated[int | None, Field(description="null: no limit on this plan")]
    used: int
    remaining: int | None
    resetsAt: Timestamp
    trialEnded: bool


@with_config(ANSWER)
class Token(TypedDict):
    """The token to use."""

    message: str
    token: str
    user: User


@with_config(ANSWER)
class AccountView(Done):
    user: Account
    quota: Quota


@with_config(ANSWER)
class QuotaView(Done):
    quota: Quota
