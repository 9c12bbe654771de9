"""Webhooks: endpoints that receive an account's events as signed HTTP POSTs, retried on a ladder.

A domain event declared with a webhook name (services/events/catalog.py) becomes one
delivery row per enabled endpoint that wants it, committed before it is lined up for its
first attempt. A delivery's body is fixed when the row is made, so every attempt, retry and manual
redelivery sends the same bytes under the same delivery id; only the signature's timestamp
is new. The attempts themselves are services/webhooks/delivery.py's.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import User, WaSession, Webhook, WebhookDelivery
from models.base import isoformat, new_id, utcnow
from models.webhook import SECRET_PREFIX, DeliveryStatus
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.events import catalog
from services.events.cursor import cursor_encode
from services.platform.paging import page_number
from services.platform.urls import url_check
from services.sessions.lifecycle import session_get
from services.webhooks import formats
from services.webhooks.delivery import deliveries_line_up
from services.webhooks.delivery import webhook_deliveries_resume as webhook_deliveries_resume
from services.webhooks.formats import DEFAULT_FORMAT, TEST_EVENT

log = logging.getLogger(__name__)

# What endpoints can subscribe to: the events declared with a webhook name.
EVENTS = tuple(event.webhook for event in catalog.EVENTS if event.webhook)
# Asked for by name only: presence, which is chatty (every time a contact types), and the
# watchdog's events and a history backfill's progress, newer than the endpoints that name no
# events (they get what they always had).
OPT_IN_EVENTS = frozenset(
    {
        "presence.update",
        "message.stalled",
        "session.degraded",
        "session.recovered",
        "history.progress",
        "history.completed",
    }
)
# What a new endpoint gets when it names no events.
DEFAULT_EVENTS = tuple(event for event in EVENTS if event not in OPT_IN_EVENTS)
# What "send test event" sends (TEST_EVENT), whatever the endpoint's filter; its body says "test": true.
MAX_WEBHOOKS = 20


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(32)


def _events_in_order(events: list[str]) -> list[str]:
    """The events asked for (a non-empty list of EVENTS, as the API's schema and the
    dashboard's form have it), in EVENTS' order, each once."""
    return [event for event in EVENTS if event in events]


def webhook_create(
    user: User,
    *,
    url: str,
    events: list[str] | None = None,
    session_id: str | None = None,
    format_: str = DEFAULT_FORMAT,
) -> tuple[Webhook, str]:
    """A new endpoint (every event when `events` is left out) and its secret, shown only here.

    `format_` (one of FORMATS, as the API's schema and the dashboard's form have it) is what
    its deliveries look like: see services/webhooks/formats.py."""
    if not user.plan.has_feature("webhooks"):
        raise Forbidden(
            f"Webhooks need the Starter plan or above; you are on {user.plan.name}",
            error="Feature not available on your plan",
            code="FEATURE_NOT_AVAILABLE",
        )
    url = url_check(url)
    events = list(DEFAULT_EVENTS) if events is None else _events_in_order(events)
    session_id = session_get(user, session_id).id if session_id else None
    count = db.session.scalar(select(func.count()).select_from(Webhook).where(Webhook.user_id == user.id))
    if count >= MAX_WEBHOOKS:
        raise Forbidden(
            f"You have {count} webhook endpoints, the most an account may have; delete unused ones first",
            error="Webhook limit reached",
            code="WEBHOOK_LIMIT_REACHED",
        )
    secret = _new_secret()
    webhook = Webhook(user_id=user.id, session_id=session_id, url=url, events=events, secret=secret, format=format_)
    db.session.add(webhook)
    db.session.commit()
    return webhook, secret


def webhooks_list(user: User, *, only_sessions: list[str] | None = None) -> list[Webhook]:
    """The user's endpoints, newest first (`only_sessions`' own, for an API key limited to them)."""
    query = select(Webhook).where(Webhook.user_id == user.id)
    if only_sessions is not None:
        query = query.where(Webhook.session_id.in_(only_sessions))
    return list(db.session.scalars(query.order_by(Webhook.created_at.desc())))


def webhooks_disabled(user: User) -> list[Webhook]:
    """The endpoints wagate disabled after failures (not those the owner paused): the owner must hear of them."""
    return list(
        db.session.scalars(
            select(Webhook).where(
                Webhook.user_id == user.id, Webhook.enabled.is_(False), Webhook.disabled_reason.is_not(None)
            )
        )
    )


def webhook_get(user: User, webhook_id: str) -> Webhook:
    """The user's own endpoint; anybody else's is indistinguishable from a missing one."""
    webhook = db.session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.user_id == user.id))
    if webhook is None:
        raise NotFound("The requested webhook does not exist", error="Webhook not found", code="WEBHOOK_NOT_FOUND")
    return webhook


def webhook_update(webhook: Webhook, *, changes: dict) -> Webhook:
    """Change an endpoint's `url`, `events`, `format` or `enabled`; enabling it again forgets its failures.

    A new format applies to deliveries made from now on: those already made keep theirs."""
    if "sessionId" in changes and changes["sessionId"] != webhook.session_id:
        raise ValidationError(
            "An endpoint's session cannot change; create another endpoint for the other session",
            code="INVALID_FIELD",
            details={"field": "sessionId"},
        )
    if "url" in changes:
        webhook.url = url_check(changes["url"])
    if "events" in changes:
        webhook.events = _events_in_order(changes["events"])
    if "format" in changes:
        webhook.format = changes["format"]
    if "enabled" in changes:
        enabled = changes["enabled"]
        if enabled and not webhook.enabled:
            webhook.enabled = True
            webhook.disabled_reason = webhook.disabled_at = None
            webhook.consecutive_failures = 0
            webhook.failing_since = None
        elif not enabled and webhook.enabled:
            # Paused by the owner: no reason, so no warning about it (see webhooks_disabled).
            webhook.enabled = False
            webhook.disabled_at = utcnow()
    db.session.commit()
    return webhook


def webhook_delete(webhook: Webhook) -> None:
    """Delete an endpoint and its delivery log; its scheduled retries then find nothing to do."""
    db.session.delete(webhook)
    db.session.commit()


def webhook_secret_rotate(webhook: Webhook) -> tuple[Webhook, str]:
    """A new secret, shown only here; the old one stops signing at once (pending retries too)."""
    secret = _new_secret()
    webhook.secret = secret
    db.session.commit()
    return webhook, secret


def webhook_deliveries(webhook: Webhook, *, status: object = None, limit: object = None) -> list[WebhookDelivery]:
    """The endpoint's delivery log, newest first, each delivery with its attempts."""
    limit = page_number(limit, default=50, maximum=200)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    if status:  # one of DeliveryStatus, as the route's schema has it
        query = query.where(WebhookDelivery.status == status)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit)
    return list(db.session.scalars(query))


def _require_enabled(webhook: Webhook) -> None:
    if not webhook.enabled:
        raise Conflict(
            'This endpoint is disabled; enable it first (PATCH {"enabled": true})',
            error="Webhook disabled",
            code="WEBHOOK_DISABLED",
        )


def webhook_test(webhook: Webhook) -> WebhookDelivery:
    """Send the endpoint a `webhook.test` event (`"test": true`): one attempt, never retried."""
    _require_enabled(webhook)
    data = {"webhookId": webhook.id, "message": "A test event from wagate: your endpoint is reachable."}
    delivery = _delivery_new(
        webhook.id, webhook.user_id, TEST_EVENT, webhook.session_id, data, webhook.format, test=True
    )
    db.session.add(delivery)
    db.session.commit()
    deliveries_line_up([webhook.id])
    return delivery


def webhook_redeliver(webhook: Webhook, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again now: same delivery id and body, the next attempt number."""
    _require_enabled(webhook)
    delivery = db.session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook.id)
    )
    if delivery is None:
        raise NotFound("The requested delivery does not exist", error="Delivery not found", code="DELIVERY_NOT_FOUND")
    now = utcnow()
    # Due now, unless an attempt is under way (its claim holds the slot and sets when it
    # counts as lost): that attempt is the one the receiver gets.
    db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            or_(
                WebhookDelivery.claimed_until.is_(None),
                WebhookDelivery.claimed_until <= now,
                WebhookDelivery.next_attempt_at.is_(None),
                WebhookDelivery.next_attempt_at <= now,
            ),
        )
        .values(status=DeliveryStatus.PENDING, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    deliveries_line_up([webhook.id])
    return delivery


# Events in: one delivery per endpoint that wants the event.


def webhooks_on_events(user_id: str, events: list[catalog.DomainEvent]) -> None:
    """Fan a group of events out to the user's endpoints, looked up once. Never raises."""
    try:
        webhooks_dispatch_many(user_id, events)
    except Exception:
        db.session.rollback()
        names = ", ".join(dict.fromkeys(event.name for event in events))
        log.exception("webhook deliveries for %s of user %s could not be made", names, user_id)


def webhooks_dispatch(user_id: str, event: catalog.DomainEvent) -> list[str]:
    """Store and enqueue a delivery for each enabled endpoint of the user that wants this event.

    Runs for every event with a webhook, the receipts of big batches included: when no
    endpoint wants it, that costs one indexed query.
    """
    return webhooks_dispatch_many(user_id, [event])


def webhooks_dispatch_many(user_id: str, events: list[catalog.DomainEvent]) -> list[str]:
    """The same for a group of events (in their order): the endpoints are looked up once, and
    the deliveries of the whole group are committed together, then enqueued."""
    hooked = [(event, data) for event in events if (data := event.webhook_data()) is not None]
    if not hooked:
        return []
    endpoints = db.session.execute(
        select(Webhook.id, Webhook.session_id, Webhook.events, Webhook.format).where(
            Webhook.user_id == user_id, Webhook.enabled.is_(True)
        )
    ).all()
    if not endpoints:
        return []
    deliveries: list[WebhookDelivery] = []
    finished: list[WebhookDelivery] = []
    for event, data in hooked:
        name, session_id = event.webhook, event.session_id
        for webhook_id, only, wanted, format_ in endpoints:
            if name not in wanted or only not in (None, session_id):
                continue
            delivery = _delivery_new(
                webhook_id,
                user_id,
                name,
                session_id,
                data,
                format_,
                delivery_id=_fixed_id(name, webhook_id, data),
                event_id=event.logged_id,
            )
            # A format without this event (aulm has no session events, say) gets no delivery.
            if delivery is not None:
                (finished if name == "bulk.finished" else deliveries).append(delivery)
    made = _deliveries_store(deliveries)
    if finished:
        # A batch finishes once, however often its progress says so (a retried message can reopen it).
        ids = [delivery.id for delivery in finished]
        known = set(db.session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.id.in_(ids))))
        made += _deliveries_store([delivery for delivery in finished if delivery.id not in known])
    return made


def _deliveries_store(deliveries: list[WebhookDelivery]) -> list[str]:
    """Commit deliveries, then line up their first attempts; their ids (none if another process
    made the same fixed-id deliveries first)."""
    if not deliveries:
        return []
    # Read before the commit expires the rows.
    ids = [delivery.id for delivery in deliveries]
    webhook_ids = dict.fromkeys(delivery.webhook_id for delivery in deliveries)
    db.session.add_all(deliveries)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent event made the same batch's deliveries first
        db.session.rollback()
        return []
    deliveries_line_up(webhook_ids)
    return ids


def _fixed_id(event: str, webhook_id: str, data: dict) -> str | None:
    if event != "bulk.finished":
        return None
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"wagate:bulk.finished:{webhook_id}:{data['batchId']}"))


def _delivery_new(
    webhook_id: str,
    user_id: str,
    event: str,
    session_id: str | None,
    data: dict,
    format_: str,
    *,
    test: bool = False,
    delivery_id: str | None = None,
    event_id: int | None = None,
) -> WebhookDelivery | None:
    """The delivery of `event` to one endpoint, its body in the endpoint's format (None: the
    format has no such event)."""
    delivery_id = delivery_id or new_id()
    delivered = formats.Delivered(
        event=event,
        delivery_id=delivery_id,
        event_id=cursor_encode(event_id) if event_id is not None else None,
        session_id=session_id,
        timestamp=isoformat(utcnow()),
        test=test,
        data=data,
        phone=lambda: _session_phone(session_id),
    )
    body = formats.body_make(format_, delivered)
    if body is None:
        return None
    return WebhookDelivery(
        id=delivery_id,
        webhook_id=webhook_id,
        user_id=user_id,
        event=event,
        event_id=event_id,
        session_id=session_id,
        test=test,
        format=format_,
        body=json.dumps(body, separators=(",", ":")),
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )


def _session_phone(session_id: str | None) -> str | None:
    session = db.session.get(WaSession, session_id) if session_id else None
    return session.phone if session else None
