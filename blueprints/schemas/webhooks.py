"""Webhook endpoints and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field, with_config
from typing_extensions import TypedDict

from blueprints.schemas.fields import ANSWER, CLOSED, OPEN, Done, Limit, Timestamp, Url
from services.webhooks.endpoints import EVENTS
from services.webhooks.formats import FORMATS

Event = Literal[EVENTS]
Format = Annotated[
    Literal[FORMATS],
    Field(
        description="What deliveries look like: wagate's own, aulm's, the self-hosted gateway's,"
        " or Standard Webhooks 1.0 (see the README's Webhooks section)"
    ),
]
Events = Annotated[list[Event], Field(min_length=1)]
DELIVERY_STATUSES = ("pending", "failed", "succeeded", "dead")


@with_config(CLOSED)
class WebhookCreate(TypedDict):
    """A new endpoint: where to, which events, whose."""

    url: Url
    events: NotRequired[Annotated[Events | None, Field(description="The events to send (null or left out: all)")]]
    sessionId: NotRequired[Annotated[str | None, Field(description="Only this session's events")]]
    format: NotRequired[Annotated[Format, Field(description="Left out: wagate")]]


@with_config(CLOSED)
class WebhookChange(TypedDict, total=False):
    """What to change. Enabling an endpoint again resets its failure count; its session
    cannot change (`sessionId`, if sent, must be the one it has)."""

    url: Url
    events: Events
    format: Format
    enabled: bool
    sessionId: str | None


@with_config(ANSWER)
class Webhook(TypedDict):
    id: str
    url: str
    events: list[Event]
    format: Format
    sessionId: Annotated[str | None, Field(description="null: every session of the account")]
    enabled: bool
    disabledReason: str | None
    disabledAt: Timestamp | None
    consecutiveFailures: int
    failingSince: Annotated[
        Timestamp | None,
        Field(description="The first failure since the last success (null: not failing); see auto-disable"),
    ]
    secretHint: str
    lastSuccessAt: Timestamp | None
    lastFailureAt: Timestamp | None
    createdAt: Timestamp
    updatedAt: Timestamp | None


@with_config(ANSWER)
class Attempt(TypedDict):
    attempt: int
    at: Timestamp
    success: bool
    statusCode: int | None
    error: str | None
    latencyMs: int | None
    response: Annotated[str | None, Field(description="The first 500 characters of the answer")]


@with_config(ANSWER)
class WebhookDelivery(TypedDict):
    id: Annotated[str, Field(description="The delivery id, the same on every attempt")]
    webhookId: str
    event: str
    eventId: Annotated[
        str | None, Field(description="The event's cursor in GET /api/events (X-Wagate-Event-Id); null for a test")
    ]
    sessionId: str | None
    test: bool
    format: Annotated[Literal[FORMATS], Field(description="The format it was made in; every attempt keeps it")]
    status: Literal[DELIVERY_STATUSES]
    attempts: int
    nextAttemptAt: Timestamp | None
    createdAt: Timestamp
    payload: Annotated[dict[str, Any], Field(description="The body every attempt sends")]
    attemptLog: list[Attempt]


@with_config(ANSWER)
class WebhookCreated(Webhook):
    success: Literal[True]
    message: str
    secret: str


@with_config(ANSWER)
class WebhookList(Done):
    webhooks: list[Webhook]
    total: int
    events: list[str]


@with_config(ANSWER)
class WebhookView(Done):
    webhook: Webhook


@with_config(ANSWER)
class WebhookDeleted(Done):
    message: NotRequired[str]


@with_config(ANSWER)
class SecretRotated(Done):
    message: NotRequired[str]
    secret: str
    webhook: Webhook


@with_config(ANSWER)
class DeliveryList(Done):
    deliveries: list[WebhookDelivery]
    total: int


@with_config(ANSWER)
class DeliveryQueued(Done):
    message: NotRequired[str]
    delivery: WebhookDelivery


@with_config(OPEN)
class DeliveriesQuery(TypedDict, total=False):
    status: Annotated[Literal[DELIVERY_STATUSES], Field(description="Only deliveries in this state")]
    limit: Annotated[Limit, Field(description="How many (default 50; above 200 counts as 200)")]
