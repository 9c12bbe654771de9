"""Webhook attempts: each a signed POST of a delivery's fixed body, claimed first, its outcome
logged and the next attempt scheduled on the retry ladder (or the delivery dead-lettered).

An attempt first claims its number with a conditional update, so a scheduled retry and a
manual redelivery (or a resumed copy of a job) racing each other send it once.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from flask import current_app
from sqlalchemy import or_, select, update

from extensions import db, queues
from models import Webhook, WebhookAttempt, WebhookDelivery
from models.base import as_utc, utcnow
from models.webhook import DeliveryStatus
from services.errors import ValidationError
from services.platform.urls import url_target
from services.webhooks import formats
from services.webhooks.formats import DEFAULT_FORMAT

log = logging.getLogger(__name__)

DELIVER_JOB = "jobs.webhooks.webhook_deliver"
USER_AGENT = "wagate-webhooks/1.0"
# What an attempt keeps of the receiver's answer.
SNIPPET_BYTES = 4096
SNIPPET_CHARS = 500
# RQ's scheduler keeps due times in whole seconds, so a retry may run up to a second early.
DUE_SLACK = timedelta(seconds=2)
# How long past its timeout a claimed attempt counts as lost (its worker died) and is made again.
LEASE_MARGIN = timedelta(seconds=60)
RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


def attempt_enqueue(delivery_id: str, attempt: int, *, delay: float | None = None) -> None:
    """Enqueue attempt number `attempt` of a delivery (after the caller committed), now or after `delay` s."""
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    options = {"job_timeout": int(timeout * 3) + 30, "result_ttl": 600, "failure_ttl": 86400}
    queue = queues.queue()
    if delay is None:
        queue.enqueue(DELIVER_JOB, delivery_id, attempt, **options)
    else:
        queue.enqueue_in(timedelta(seconds=delay), DELIVER_JOB, delivery_id, attempt, **options)


def webhook_deliveries_resume() -> int:
    """After a worker starts: enqueue again every delivery still waiting for an attempt.

    Scheduled retries live in Redis; the embedded Redis stand-in loses them on a restart. A
    copy made here of a job Redis still holds finds its attempt claimed and does nothing.
    """
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.next_attempt_at).where(
            WebhookDelivery.status.in_(RETRYABLE)
        )
    ).all()
    now = utcnow()
    for delivery_id, attempts, next_attempt_at in rows:
        delay = max((as_utc(next_attempt_at) - now).total_seconds(), 0.0) if next_attempt_at else 0.0
        attempt_enqueue(delivery_id, attempts + 1, delay=delay)
    return len(rows)


# Attempts out: one signed POST each, its outcome logged, the next one scheduled.


@dataclass(frozen=True)
class AttemptOutcome:
    status_code: int | None
    latency_ms: int
    response: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def webhook_delivery_attempt(delivery_id: str, attempt: int) -> None:
    """Make attempt number `attempt` of a delivery, unless another copy of it got there first."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:  # its endpoint was deleted
        return
    webhook = db.session.get(Webhook, delivery.webhook_id)
    claimable = (
        WebhookDelivery.id == delivery_id,
        WebhookDelivery.attempts == attempt - 1,
        WebhookDelivery.status.in_(RETRYABLE),
        or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= utcnow() + DUE_SLACK),
    )
    if not webhook.enabled:
        db.session.execute(
            update(WebhookDelivery)
            .where(*claimable)
            .values(status=DeliveryStatus.DEAD, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return
    # Read what the attempt needs now: no transaction stays open during the request.
    url, secret, webhook_id = webhook.url, webhook.secret, webhook.id
    body, event, format_ = delivery.body.encode(), delivery.event, delivery.format
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(*claimable)
        .values(
            attempts=attempt,
            status=DeliveryStatus.PENDING,
            next_attempt_at=utcnow() + timedelta(seconds=timeout) + LEASE_MARGIN,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        return
    outcome = webhook_post(
        url, secret, body=body, event=event, delivery_id=delivery_id, attempt=attempt, format_=format_
    )
    _outcome_record(delivery_id, webhook_id, attempt, outcome)


def webhook_post(
    url: str,
    secret: str,
    *,
    body: bytes,
    event: str,
    delivery_id: str,
    attempt: int,
    format_: str = DEFAULT_FORMAT,
) -> AttemptOutcome:
    """POST one signed attempt to `url` (checked again now), with `format_`'s headers; redirects are not followed."""
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    try:
        target = url_target(url)
    except ValidationError as exc:
        return AttemptOutcome(status_code=None, latency_ms=0, error=exc.message)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **formats.headers_make(
            format_,
            secret,
            body=body,
            event=formats.wire_event(format_, event, json.loads(body)),
            delivery_id=delivery_id,
            attempt=attempt,
            timestamp=int(time.time()),
        ),
        **target.headers,
    }
    started = time.monotonic()
    deadline = started + timeout
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", target.url, content=body, headers=headers, extensions=target.extensions) as answer,
        ):
            snippet = _snippet(answer, deadline)
            latency_ms = int((time.monotonic() - started) * 1000)
            error = None
            if answer.is_redirect:
                error = f"Redirected to {answer.headers.get('Location', '?')}: redirects are not followed"
            return AttemptOutcome(
                status_code=answer.status_code,
                latency_ms=latency_ms,
                response=snippet,
                error=error,
                retry_after=_retry_after(answer.headers.get("Retry-After")) if not answer.is_success else None,
            )
    except httpx.TimeoutException:
        error = f"No answer within {timeout:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    return AttemptOutcome(status_code=None, latency_ms=int((time.monotonic() - started) * 1000), error=error)


def _snippet(answer: httpx.Response, deadline: float) -> str | None:
    """The start of the receiver's answer, read for no longer than the attempt may take."""
    data = b""
    for chunk in answer.iter_bytes():
        data += chunk
        if len(data) >= SNIPPET_BYTES or time.monotonic() > deadline:
            break
    text = data[:SNIPPET_BYTES].decode("utf-8", errors="replace").strip()
    return text[:SNIPPET_CHARS] or None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number of seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _retry_delay(attempt: int, retry_after: float | None) -> float | None:
    """Seconds until the attempt after failed attempt `attempt`, or None: dead-lettered."""
    delays = current_app.config["WEBHOOK_RETRY_DELAYS"]
    if attempt > len(delays):
        return None
    if retry_after is not None:
        return min(retry_after, current_app.config["WEBHOOK_RETRY_AFTER_CAP"])
    return delays[attempt - 1]


def _outcome_record(delivery_id: str, webhook_id: str, attempt: int, outcome: AttemptOutcome) -> None:
    """Log the attempt; count the endpoint's failures; settle the delivery or schedule its retry."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:  # deleted with its endpoint during the attempt
        return
    now = utcnow()
    db.session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            number=attempt,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            latency_ms=outcome.latency_ms,
            response=outcome.response,
        )
    )
    disabled = False if outcome.succeeded else _failure_count(webhook_id, now)
    if outcome.succeeded:
        db.session.execute(
            update(Webhook)
            .where(Webhook.id == webhook_id)
            .values(consecutive_failures=0, last_success_at=now)
            .execution_options(synchronize_session=False)
        )
    retry_in = None
    if delivery.attempts == attempt:  # no later attempt has started meanwhile
        if outcome.succeeded:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
        else:
            if not (delivery.test or disabled):
                retry_in = _retry_delay(attempt, outcome.retry_after)
            if retry_in is None:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.DEAD, None
            else:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = now + timedelta(seconds=retry_in)
    db.session.commit()
    if retry_in is not None:
        attempt_enqueue(delivery_id, attempt + 1, delay=retry_in)


def _failure_count(webhook_id: str, now: datetime) -> bool:
    """Count a failed attempt against the endpoint; True if that many in a row disabled it."""
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(consecutive_failures=Webhook.consecutive_failures + 1, last_failure_at=now)
        .execution_options(synchronize_session=False)
    )
    limit = current_app.config["WEBHOOK_MAX_CONSECUTIVE_FAILURES"]
    disabled = db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.enabled.is_(True), Webhook.consecutive_failures >= limit)
        .values(
            enabled=False,
            disabled_at=now,
            disabled_reason=f"Disabled after {limit} failed attempts in a row; fix the endpoint, then enable it",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if disabled:
        log.warning("webhook %s disabled after %s consecutive failed attempts", webhook_id, limit)
    return bool(disabled)
