"""Webhook attempts: lining deliveries up per endpoint, and each attempt a signed POST of the
delivery's fixed body, its outcome logged and the next one scheduled on the retry ladder.

The database is the record and the schedule; Redis only carries the jobs. A delivery that
is due (a first attempt, a retry whose time has come, a redelivery) waits in its row until
it is lined up: it takes one of its endpoint's WEBHOOK_ENDPOINT_CONCURRENCY slots
(`claimed_until`) and goes on the webhook queue as a job of ids. Deliveries are lined up
- as soon as they are made (events, a test, a redelivery),
- when an attempt to the same endpoint ends: its slot passes to the next due delivery,
- by `webhooks_pump()`, which every process working the webhook queue runs every
  WEBHOOK_POLL_SECONDS: retries that fell due, and deliveries whose job was lost (Redis lost
  its data, or a worker died; their slot's hold lapses) are lined up within that time.
So retries keep to the ladder whatever the default queue is doing, and nothing waits for
RQ's scheduler. An attempt claims its number with a conditional update, so two jobs for one
attempt (a lost job found again, and the original after all) send it once.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from flask import current_app
from rq import Queue
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import aliased, lazyload

from extensions import db, queues
from jobs.queues import WEBHOOK_QUEUE
from models import Webhook, WebhookAttempt, WebhookDelivery
from models.base import as_utc, utcnow
from models.webhook import DeliveryStatus
from services.errors import ValidationError
from services.events.cursor import cursor_encode
from services.platform.metrics import webhook_attempted, webhook_dead_lettered
from services.platform.urls import url_target
from services.webhooks import formats
from services.webhooks.formats import DEFAULT_FORMAT

log = logging.getLogger(__name__)

DELIVER_JOB = "jobs.webhooks.webhook_deliver"
USER_AGENT = "wagate-webhooks/1.0"
# What an attempt keeps of the receiver's answer.
SNIPPET_BYTES = 4096
SNIPPET_CHARS = 500
# Processes' clocks may differ a little: a job lined up by one finds its delivery due in another.
DUE_SLACK = timedelta(seconds=2)
# How long a lined-up delivery waits for its job to start before it is lined up again.
QUEUE_HOLD = timedelta(seconds=30)
# How long past its timeout a claimed attempt counts as lost (its worker died) and is made again.
LEASE_MARGIN = timedelta(seconds=60)
RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
# An attempt reads its delivery without the log of the attempts before it.
WITHOUT_LOG = [lazyload(WebhookDelivery.attempt_log)]
# A key the pump keeps in Redis: when it is gone, so are the jobs that were on the queue.
QUEUE_MARK = "wagate:webhooks:queue-mark"


def _waiting(now: datetime) -> tuple:
    """A delivery that is due and holds no slot (or whose hold has lapsed)."""
    return (
        WebhookDelivery.status.in_(RETRYABLE),
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until <= now),
    )


def deliveries_line_up(webhook_ids: Iterable[str]) -> int:
    """Line up the due deliveries of these endpoints that fit in their free slots (after the
    caller committed); how many. Never raises: what it could not line up (the database or
    Redis away), the pump lines up later."""
    try:
        lined_up = [taken for webhook_id in dict.fromkeys(webhook_ids) for taken in _endpoint_line_up(webhook_id)]
        _attempts_enqueue(lined_up)
    except Exception:
        db.session.rollback()
        log.exception("webhook deliveries could not be lined up now; the pump tries again")
        return 0
    return len(lined_up)


def _dead_letter(*conditions) -> None:
    """Dead-letter the deliveries that match (their endpoint is disabled), and commit."""
    dead = db.session.execute(
        update(WebhookDelivery)
        .where(*conditions)
        .values(status=DeliveryStatus.DEAD, next_attempt_at=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    webhook_dead_lettered(dead)


def _endpoint_line_up(webhook_id: str) -> list[tuple[str, int, datetime]]:
    """Give the endpoint's free slots to its oldest due deliveries (dead-letter them if it is
    disabled); (delivery id, attempt, hold) of each. Commits."""
    now = utcnow()
    cap = current_app.config["WEBHOOK_ENDPOINT_CONCURRENCY"]
    # The endpoint's row lock makes its slot takers wait for each other on PostgreSQL; on
    # SQLite the first UPDATE below takes the database's one write lock before it reads.
    enabled = db.session.scalar(select(Webhook.enabled).where(Webhook.id == webhook_id).with_for_update())
    waiting = (WebhookDelivery.webhook_id == webhook_id, *_waiting(now))
    if enabled is None:  # deleted, with its deliveries
        db.session.rollback()
        return []
    if not enabled:
        _dead_letter(*waiting)
        return []
    candidates = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts)
        .where(*waiting)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at, WebhookDelivery.id)
        .limit(cap)
    ).all()
    held = aliased(WebhookDelivery)
    in_hand = (
        select(func.count())
        .select_from(held)
        .where(held.webhook_id == webhook_id, held.claimed_until > now)
        .scalar_subquery()
    )
    hold = now + QUEUE_HOLD
    lined_up = []
    for delivery_id, attempts in candidates:
        # Each slot is taken by one statement that counts the slots in use as it takes it.
        taken = db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempts, *waiting, in_hand < cap)
            .values(claimed_until=hold)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not taken:  # the slots are full, or another process lined this one up
            break
        lined_up.append((delivery_id, attempts + 1, hold))
    db.session.commit()
    return lined_up


def _attempts_enqueue(lined_up: list[tuple[str, int, datetime]]) -> None:
    """Put the attempts of lined-up deliveries on the webhook queue, in one push. If Redis
    refuses them, their slots are freed at once for the next try."""
    if not lined_up:
        return
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    # No result is kept (the database has the outcome); a job that raised stays a day.
    options = {"timeout": int(timeout * 3) + 30, "result_ttl": 0, "failure_ttl": 86400}
    jobs = [Queue.prepare_data(DELIVER_JOB, (delivery_id, attempt), **options) for delivery_id, attempt, _ in lined_up]
    try:
        queues.queue(WEBHOOK_QUEUE).enqueue_many(jobs)
    except Exception:
        for delivery_id, _, hold in lined_up:
            db.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.claimed_until == hold)
                .values(claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
        raise


def webhooks_pump() -> int:
    """Line up, for every endpoint with a free slot, its deliveries that are due and hold
    none: retries whose time has come, and any whose job was lost. How many. When nothing
    waits this is two indexed reads, and one Redis command to notice a Redis that lost its data."""
    if queues.connection.set(QUEUE_MARK, "1", nx=True):
        _holds_release()
    now = utcnow()
    cap = current_app.config["WEBHOOK_ENDPOINT_CONCURRENCY"]
    busy = dict(
        db.session.execute(
            select(WebhookDelivery.webhook_id, func.count())
            .where(WebhookDelivery.claimed_until > now)
            .group_by(WebhookDelivery.webhook_id)
        ).all()
    )
    due = db.session.scalars(select(WebhookDelivery.webhook_id).where(*_waiting(now)).distinct()).all()
    db.session.rollback()  # hold no read transaction between the endpoints' line-ups
    lined_up = [taken for webhook_id in due if busy.get(webhook_id, 0) < cap for taken in _endpoint_line_up(webhook_id)]
    _attempts_enqueue(lined_up)
    return len(lined_up)


def webhook_deliveries_resume() -> int:
    """After Redis lost its data (or on a worker's start): line up again, now, every delivery
    whose job was on the queue; how many were. Attempts under way are left to finish, and a
    job Redis still holds after all finds its attempt claimed and does nothing."""
    released = _holds_release()
    queues.connection.set(QUEUE_MARK, "1")
    webhooks_pump()
    return released


def _holds_release() -> int:
    """Free the slots of the deliveries lined up but not yet attempted (an attempt under way
    is due only when its claim lapses); how many."""
    now = utcnow()
    released = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.status.in_(RETRYABLE),
            WebhookDelivery.claimed_until.is_not(None),
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(claimed_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return released


# Attempts out: one signed POST each, its outcome logged, the next one set due.


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
    """Make attempt number `attempt` of a delivery, unless another copy of it got there first;
    then hand the endpoint's slot to its next due delivery."""
    delivery = db.session.get(WebhookDelivery, delivery_id, options=WITHOUT_LOG)
    if delivery is None:  # its endpoint was deleted
        return
    webhook = db.session.get(Webhook, delivery.webhook_id)
    now = utcnow()
    claimable = (
        WebhookDelivery.id == delivery_id,
        WebhookDelivery.attempts == attempt - 1,
        WebhookDelivery.status.in_(RETRYABLE),
        or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now + DUE_SLACK),
    )
    if not webhook.enabled:
        _dead_letter(*claimable)
        return
    # Read what the attempt needs now: no transaction stays open during the request.
    url, secret, webhook_id = webhook.url, webhook.secret, webhook.id
    body, event, format_ = delivery.body.encode(), delivery.event, delivery.format
    event_id = cursor_encode(delivery.event_id) if delivery.event_id is not None else None
    lease = now + timedelta(seconds=current_app.config["WEBHOOK_TIMEOUT_SECONDS"]) + LEASE_MARGIN
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(*claimable)
        .values(attempts=attempt, status=DeliveryStatus.PENDING, next_attempt_at=lease, claimed_until=lease)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        return
    outcome = webhook_post(
        url,
        secret,
        body=body,
        event=event,
        delivery_id=delivery_id,
        attempt=attempt,
        format_=format_,
        event_id=event_id,
    )
    webhook_attempted(outcome.succeeded, outcome.latency_ms / 1000)
    _outcome_record(delivery_id, webhook_id, attempt, outcome)
    deliveries_line_up([webhook_id])


def webhook_post(
    url: str,
    secret: str,
    *,
    body: bytes,
    event: str,
    delivery_id: str,
    attempt: int,
    format_: str = DEFAULT_FORMAT,
    event_id: str | None = None,
) -> AttemptOutcome:
    """POST one signed attempt to `url` (checked again now), with `format_`'s headers (and the
    event's cursor, `event_id`, in X-Wagate-Event-Id); redirects are not followed."""
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
            event_id=event_id,
        ),
        **target.headers,
    }
    started = time.monotonic()
    deadline = started + timeout
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls()) as client,
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


@functools.cache
def _tls() -> ssl.SSLContext:
    """The certificate checks of every attempt, made once: loading the CA bundle costs more
    CPU (12 ms) than the rest of an attempt."""
    return httpx.create_ssl_context(trust_env=False)


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
    """Log the attempt; count the endpoint's failures; settle the delivery or set when its retry is due."""
    delivery = db.session.get(WebhookDelivery, delivery_id, options=WITHOUT_LOG)
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
            .values(consecutive_failures=0, failing_since=None, last_success_at=now)
            .execution_options(synchronize_session=False)
        )
    retry_in = None
    dead = False
    if delivery.attempts == attempt:  # no later attempt has started meanwhile
        delivery.claimed_until = None  # its slot is free
        if outcome.succeeded:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
        else:
            if not (delivery.test or disabled):
                retry_in = _retry_delay(attempt, outcome.retry_after)
            dead = retry_in is None
            if dead:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.DEAD, None
            else:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = now + timedelta(seconds=retry_in)
    db.session.commit()
    if dead:
        webhook_dead_lettered()


def _failure_count(webhook_id: str, now: datetime) -> bool:
    """Count a failed attempt against the endpoint; True if that disabled it: it has now
    failed for WEBHOOK_DISABLE_AFTER_SECONDS without a success, and at least
    WEBHOOK_MAX_CONSECUTIVE_FAILURES attempts in a row."""
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(
            consecutive_failures=Webhook.consecutive_failures + 1,
            last_failure_at=now,
            failing_since=func.coalesce(Webhook.failing_since, now),
        )
        .execution_options(synchronize_session=False)
    )
    failures, since = db.session.execute(
        select(Webhook.consecutive_failures, Webhook.failing_since).where(Webhook.id == webhook_id)
    ).one()
    span = now - as_utc(since)
    if failures < current_app.config["WEBHOOK_MAX_CONSECUTIVE_FAILURES"]:
        return False
    if span < timedelta(seconds=current_app.config["WEBHOOK_DISABLE_AFTER_SECONDS"]):
        return False
    reason = f"Disabled after failing for {_duration(span)}: {failures} failed attempts in a row"
    disabled = db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.enabled.is_(True))
        .values(enabled=False, disabled_at=now, disabled_reason=f"{reason}; fix the endpoint, then enable it")
        .execution_options(synchronize_session=False)
    ).rowcount
    if disabled:
        log.warning("webhook %s: %s", webhook_id, reason)
    return bool(disabled)


def _duration(span: timedelta) -> str:
    """A span as people say it: "40 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    seconds = int(span.total_seconds())
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


def webhook_deliveries_prune(before: datetime, *, batch: int) -> int:
    """Delete the settled deliveries (succeeded or dead) made before `before`, with their
    attempts, `batch` at a time (one transaction each); how many went. Those still on the
    ladder stay whatever their age."""
    removed = 0
    while True:
        ids = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.created_at < before,
                WebhookDelivery.status.in_((DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD)),
            )
            .limit(batch)
        )
        count = db.session.execute(
            delete(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids.scalar_subquery()))
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        removed += count
        if count < batch:
            return removed
