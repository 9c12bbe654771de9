"""Bulk sends: one text to many recipients, fanned out as paced RQ jobs per session.

Every recipient is a message row before anything is enqueued. A dispatch job (default
queue) schedules the next chunk of sends at the session's pace and then schedules itself
for the chunk after; it only ever picks rows not yet dispatched, and a send job does
nothing for a message that is no longer queued, so a worker killed at any point loses
no recipient and sends none twice (`bulk_resume` re-enqueues dispatching on start).
"""

from __future__ import annotations

import csv
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import aliased

from extensions import db, queues
from models import BulkBatch, Message, MessageStatus, User, WaSession
from models.base import as_utc, utcnow
from services.accounts.quotas import quota_refund, quota_reserve
from services.errors import Conflict, Forbidden, NotFound, ValidationError
from services.events.bus import event_publish
from services.events.catalog import BulkProgress, MessageStatusChanged
from services.governor.pace import projected_seconds, seconds_per_message
from services.hosts.calls import messages_hand_off
from services.messaging.scheduling import send_at_parse
from services.messaging.sending import message_simulated, new_wa_id, session_require_not_overloaded
from services.platform.outages import is_outage
from services.platform.phones import phone_normalize
from services.platform.waiting import wait_until
from services.sessions.lifecycle import session_require_connected

log = logging.getLogger(__name__)
DISPATCH_JOB = "jobs.bulk.bulk_dispatch"
DISPATCH_CHUNK = 100
SENT_LIKE = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PLAYED)


def _contacts_parse(contacts: list) -> tuple[list[tuple[int, str, str]], list[dict]]:
    """Valid (position, contact as given, phone) and rejected contacts with their reasons."""
    maximum = current_app.config["BULK_MAX_CONTACTS"]  # the operator's: no schema can say it
    if len(contacts) > maximum:
        raise ValidationError(
            f"'contacts' has {len(contacts)} entries; at most {maximum} per batch", code="TOO_MANY_CONTACTS"
        )
    valid, rejected, seen = [], [], set()
    for position, contact in enumerate(contacts):
        raw = contact.get("number") if isinstance(contact, dict) else contact
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            # Echoed as it came (null, {}, ["x"], true), with where it stands in the list.
            error = f'contacts[{position}] is not a phone number: give "919876543210" or {{"number": "919876543210"}}'
            rejected.append({"position": position, "contact": contact, "error": error})
            continue
        shown = raw if isinstance(raw, str) else str(raw)
        try:
            phone = phone_normalize(raw, field="contacts")
        except ValidationError:
            rejected.append({"position": position, "contact": shown, "error": "Invalid phone number"})
            continue
        if phone in seen:
            rejected.append({"position": position, "contact": shown, "error": "Duplicate number in this batch"})
            continue
        seen.add(phone)
        valid.append((position, shown, phone))
    return valid, rejected


def bulk_create(
    user: User,
    session: WaSession | None,
    *,
    contacts: list,
    text: str,
    delay: float | None,
    simulated: bool = False,
    send_at: str | None = None,
) -> BulkBatch:
    """Store a batch and its messages and start dispatching them at the batch's pace
    (at `send_at`, ISO 8601, when given: the batch is `scheduled` until then).

    `simulated` (a test key's batch) checks everything a real one checks, then answers with
    an unsaved batch, finished, whose valid contacts were all "sent": nothing is stored or sent.
    """
    if not user.plan.has_feature("bulk_messaging"):
        raise Forbidden(
            f"Bulk messaging needs the Growth plan or above; you are on {user.plan.name}",
            error="Feature not available on your plan",
            code="FEATURE_NOT_AVAILABLE",
        )
    if session is None:
        raise NotFound(
            "No session yet: POST /api/whatsapp/init first", error="Session not found", code="SESSION_NOT_FOUND"
        )
    floor = current_app.config["BULK_MIN_DELAY_MS"]
    delay_ms = max(int(2000 if delay is None else delay), floor)
    valid, rejected = _contacts_parse(contacts)
    starts_at = send_at_parse(send_at)
    if starts_at is None:
        session_require_connected(session, "connect it before sending")
    if simulated:
        return _batch_simulated(user, session, text=text, delay_ms=delay_ms, valid=valid, rejected=rejected)
    session_require_not_overloaded(session)
    # All of the batch's slots at once, or none (429 says how many are left). Unlike a
    # single send, a batch refused for its session costs nothing: that is checked first.
    period = quota_reserve(user, len(valid)).period if valid else None
    batch = BulkBatch(
        user_id=user.id,
        session_id=session.id,
        body=text,
        delay_ms=delay_ms,
        total=len(valid) + len(rejected),
        rejected=rejected,
        status=("scheduled" if starts_at else "running") if valid else "finished",
        finished_at=None if valid else utcnow(),
        send_at=starts_at,
    )
    db.session.add(batch)
    db.session.flush()
    if valid:
        # Every recipient in one INSERT: the model's defaults (id, status, timestamps) are
        # filled in row by row as SQLAlchemy builds it, without an ORM object per message.
        db.session.execute(
            insert(Message),
            [
                {
                    "user_id": user.id,
                    "session_id": session.id,
                    "batch_id": batch.id,
                    "position": position,
                    "phone": phone,
                    "body": text,
                    "wa_id": new_wa_id(),
                    "quota_period": period,
                }
                for position, _, phone in valid
            ],
        )
    db.session.commit()
    if valid:
        batch.handed_off = _dispatch_start(batch.id)
    return batch


def _dispatch_start(batch_id: str) -> bool:
    """Have the worker start dispatching a stored batch. A batch is accepted once stored:
    when Redis cannot take the job now, the relay starts it once it is back. Whether it took it."""
    try:
        queues.queue().enqueue(DISPATCH_JOB, batch_id, job_id=f"dispatch-{batch_id}-0", result_ttl=600)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("batch %s: stored, dispatching starts once Redis is back: %s", batch_id, exc)
        return False
    return True


def _batch_simulated(
    user: User, session: WaSession, *, text: str, delay_ms: int, valid: list, rejected: list[dict]
) -> BulkBatch:
    now = utcnow()
    batch = BulkBatch(
        id="sim_" + secrets.token_hex(16),
        user_id=user.id,
        session_id=session.id,
        body=text,
        delay_ms=delay_ms,
        total=len(valid) + len(rejected),
        rejected=rejected,
        sent_count=len(valid),
        failed_count=0,
        status="finished",
        created_at=now,
        finished_at=now,
    )
    batch.simulated = True
    batch.simulated_messages = [
        message_simulated(user, session, phone=phone, text=text, position=position) for position, _, phone in valid
    ]
    return batch


def bulk_dispatch(batch_id: str) -> None:
    """Schedule the next chunk of the batch's sends at the session's pace."""
    batch = db.session.get(BulkBatch, batch_id)
    if batch is not None and batch.status == "scheduled":
        if as_utc(batch.send_at) > datetime.now(UTC):  # early (a resumed worker): come back then
            queues.queue().enqueue_at(
                as_utc(batch.send_at), DISPATCH_JOB, batch_id, job_id=f"dispatch-{batch_id}-start", result_ttl=600
            )
            return
        batch.status = "running"
        db.session.commit()
    if batch is None or batch.status != "running":
        return
    session = db.session.get(WaSession, batch.session_id)
    delay_ms = batch.delay_ms
    # The chunk is claimed in one UPDATE: the next undispatched rows, in list order; a row
    # another dispatch claimed meanwhile is not claimed again. The session's send governor
    # paces them (the batch's delay as a floor between its own messages), interleaved with
    # the session's other sends.
    now = datetime.now(UTC)
    pending = aliased(Message)
    chunk = (
        select(pending.id)
        .where(pending.batch_id == batch_id, pending.dispatched_at.is_(None))
        .order_by(pending.position)
        .limit(DISPATCH_CHUNK)
    )
    messages = db.session.scalars(
        update(Message)
        .where(Message.id.in_(chunk.scalar_subquery()), Message.dispatched_at.is_(None))
        .values(dispatched_at=now, min_gap_ms=delay_ms)
        .returning(Message)
        .execution_options(synchronize_session=False)
    ).all()
    if not messages:
        db.session.rollback()
        return
    messages.sort(key=lambda message: message.position)
    last_position = messages[-1].position
    _detach(messages)
    db.session.commit()
    _hand_off(session, messages)
    if len(messages) == DISPATCH_CHUNK:
        # Dispatch the next chunk when this one is about half sent, so the queue stays short
        # (at once when the batch has no delay: its pace is the session's alone).
        next_at = now + timedelta(milliseconds=delay_ms) * (DISPATCH_CHUNK // 2)
        job_id = f"dispatch-{batch_id}-{last_position}"
        if delay_ms:
            queues.queue().enqueue_at(next_at, DISPATCH_JOB, batch_id, job_id=job_id, result_ttl=600)
        else:
            queues.queue().enqueue(DISPATCH_JOB, batch_id, job_id=job_id, result_ttl=600)


def _detach(messages: list[Message]) -> None:
    """Keep the messages as loaded past the commit, so handing them off reads no row again."""
    for message in messages:
        db.session.expunge(message)


def _hand_off(session: WaSession, messages: list[Message]) -> None:
    """Hand a chunk of committed messages to the engine host that owns their session, in order
    (the relay lines them up if Redis cannot take them now)."""
    messages_hand_off(session, messages)


def bulk_resume(batch_ids: list[str] | None = None) -> int:
    """After a worker restart (or Redis lost its data): dispatch again every running batch
    that still has queued recipients (or just these batches).

    Dispatching only picks undispatched rows, and handing a message over twice sends it
    once, so this is safe whatever the worker was doing when it died.
    """
    query = (
        select(Message.batch_id)
        .join(BulkBatch, BulkBatch.id == Message.batch_id)
        .where(BulkBatch.status.in_(("running", "scheduled")), Message.status == MessageStatus.QUEUED)
        .distinct()
    )
    if batch_ids is not None:
        query = query.where(BulkBatch.id.in_(batch_ids))
    running = db.session.scalars(query).all()
    for batch_id in running:
        batch = db.session.get(BulkBatch, batch_id)
        messages = db.session.scalars(
            select(Message)
            .where(
                Message.batch_id == batch_id, Message.status == MessageStatus.QUEUED, Message.dispatched_at.is_not(None)
            )
            .order_by(Message.position)
        ).all()
        _hand_off(db.session.get(WaSession, batch.session_id), messages)
        queues.queue().enqueue(DISPATCH_JOB, batch_id, job_id=f"dispatch-{batch_id}-resume", result_ttl=600)
    return len(running)


def batches_stalled(now: datetime, *, quiet_seconds: float) -> list[str]:
    """Batches whose dispatching seems to have stopped: due (running, or scheduled for a time
    that has passed), with recipients not dispatched yet, while none of those dispatched
    waits to be sent and none was dispatched for `quiet_seconds`. A batch being dispatched
    always has handed-over recipients waiting (the next chunk goes when the last is half
    sent), so this is one whose next dispatch job was lost (Redis down, or its data lost).
    """
    quiet_since = now - timedelta(seconds=quiet_seconds)
    left = aliased(Message)
    waiting = aliased(Message)
    recent = aliased(Message)
    return db.session.scalars(
        select(BulkBatch.id).where(
            BulkBatch.status.in_(("running", "scheduled")),
            BulkBatch.created_at < quiet_since,
            (BulkBatch.send_at.is_(None)) | (BulkBatch.send_at < quiet_since),
            select(left.id).where(left.batch_id == BulkBatch.id, left.dispatched_at.is_(None)).exists(),
            ~select(waiting.id)
            .where(
                waiting.batch_id == BulkBatch.id,
                waiting.status == MessageStatus.QUEUED,
                waiting.dispatched_at.is_not(None),
            )
            .exists(),
            ~select(recent.id).where(recent.batch_id == BulkBatch.id, recent.dispatched_at >= quiet_since).exists(),
        )
    ).all()


def batch_cancel(user: User, batch_id: str) -> BulkBatch:
    """Call off a scheduled batch before it starts: none of it is sent, its quota comes back."""
    batch = batch_get(user, batch_id)
    if batch.status != "scheduled":
        raise Conflict(f"This batch is {batch.status}: only a scheduled batch can be cancelled", code="NOT_SCHEDULED")
    called_off = db.session.execute(
        update(BulkBatch)
        .where(BulkBatch.id == batch.id, BulkBatch.status == "scheduled")
        .values(status="cancelled", finished_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not called_off:  # it started a moment ago
        db.session.rollback()
        raise Conflict("This batch has just started", code="NOT_SCHEDULED")
    messages = db.session.scalars(
        select(Message).where(Message.batch_id == batch.id, Message.status == MessageStatus.QUEUED)
    ).all()
    for message in messages:
        message.status = MessageStatus.CANCELLED
        quota_refund(message)
    db.session.commit()
    db.session.refresh(batch)
    return batch


def batch_counts(batch: BulkBatch) -> dict[str, int]:
    sent = batch.sent_count
    failed = batch.failed_count + len(batch.rejected or [])
    pending = 0 if batch.status == "cancelled" else batch.total - sent - failed
    return {"total": batch.total, "sent": sent, "failed": failed, "pending": pending}


def batch_count_settled(batch_id: str, *, failed: bool, count: int = 1) -> None:
    """`count` of the batch's messages left the queue, sent or `failed` (in the caller's transaction)."""
    column = BulkBatch.failed_count if failed else BulkBatch.sent_count
    db.session.execute(update(BulkBatch).where(BulkBatch.id == batch_id).values({column: column + count}))


def batch_recount(batch_id: str) -> None:
    """Recount from the messages themselves (after one was put back in the queue)."""
    rows = dict(
        db.session.execute(
            select(Message.status, func.count()).where(Message.batch_id == batch_id).group_by(Message.status)
        ).all()
    )
    db.session.execute(
        update(BulkBatch)
        .where(BulkBatch.id == batch_id)
        .values(
            sent_count=sum(rows.get(status, 0) for status in SENT_LIKE),
            failed_count=rows.get(MessageStatus.FAILED, 0),
        )
    )
    db.session.commit()
    batch_progress(batch_id)


def batch_progress(batch_id: str) -> None:
    """After one of its messages settled: tell the owner, and close (or reopen) the batch."""
    batch = db.session.get(BulkBatch, batch_id, populate_existing=True)  # its counters as committed
    if batch is None:
        return
    counts = batch_counts(batch)
    finished = counts["pending"] == 0
    if finished != (batch.status == "finished"):
        batch.status = "finished" if finished else "running"
        batch.finished_at = utcnow() if finished else None
        db.session.commit()
    event_publish(
        batch.user_id, BulkProgress(batch_id=batch.id, session_id=batch.session_id, status=batch.status, **counts)
    )


def batch_on_message_statuses(user_id: str, events: list[MessageStatusChanged]) -> None:
    """A subscriber: a batch's messages left the queue (its progress moves on) or were put
    back in it (the batch is recounted); each batch they move is recounted or told once,
    after them all (in the order the batches first moved)."""
    moved: dict[str, bool] = {}  # batch id -> to be recounted (a message went back in the queue)
    for event in events:
        if event.batch_id is None:
            continue
        if event.status == MessageStatus.QUEUED:
            moved[event.batch_id] = True
        elif event.settled:
            moved.setdefault(event.batch_id, False)
    for batch_id, recount in moved.items():
        if recount:
            batch_recount(batch_id)
        else:
            batch_progress(batch_id)


def batch_report(batch: BulkBatch) -> dict:
    """The documented {total, sent, failed, results} with a result per contact, in list order."""
    results = {
        item["position"]: {"contact": item["contact"], "success": False, "status": "Failed", "error": item["error"]}
        for item in batch.rejected or []
    }
    if batch.simulated:
        messages = batch.simulated_messages
    else:
        # The columns a result needs, not whole rows: a batch may have 10,000 of them.
        messages = db.session.execute(
            select(Message.id, Message.position, Message.phone, Message.status, Message.error).where(
                Message.batch_id == batch.id
            )
        )
    for message in messages:
        if message.status in SENT_LIKE:
            result = {"contact": message.phone, "success": True, "status": "Sent"}
        elif message.status == MessageStatus.FAILED:
            result = {"contact": message.phone, "success": False, "status": "Failed", "error": message.error}
        elif message.status == MessageStatus.CANCELLED:
            result = {"contact": message.phone, "success": False, "status": "Cancelled"}
        else:  # not sent yet, and not failed either
            result = {"contact": message.phone, "status": "Pending"}
        results[message.position] = {**result, "messageId": message.id}
    counts = batch_counts(batch)
    report = {**batch.summary(), **counts, "results": [results[position] for position in sorted(results)]}
    return report | {"simulated": True} if batch.simulated else report


def batch_get(user: User, batch_id: str) -> BulkBatch:
    batch = db.session.scalar(select(BulkBatch).where(BulkBatch.id == batch_id, BulkBatch.user_id == user.id))
    if batch is None:
        raise NotFound("The requested batch does not exist", error="Batch not found", code="BATCH_NOT_FOUND")
    return batch


def batch_wait(batch: BulkBatch, seconds: float) -> BulkBatch:
    """Re-read the batch until every message has been answered, or time is up."""
    if batch.status != "running" or not batch.handed_off:  # finished already (or simulated), or not started yet
        return batch
    batch_id = batch.id
    return wait_until(lambda: db.session.get(BulkBatch, batch_id), lambda b: b.status != "running", seconds, 0.1)


def batch_expected_seconds(batch: BulkBatch) -> float:
    valid = batch.total - len(batch.rejected or [])
    return max(valid - 1, 0) * batch.delay_ms / 1000


# The dashboard's bulk send: contact lists from pasted text or a CSV file, a preview of
# who a batch would reach, and the batches' progress.

# A header cell naming any of these marks the column that holds the numbers.
CSV_NUMBER_COLUMNS = ("number", "phone", "mobile", "whatsapp")
CSV_DELIMITERS = ",;\t"
# The reason `_contacts_parse` gives for a repeated number; every other rejection is an invalid one.
DUPLICATE_ERROR = "Duplicate number in this batch"


def contacts_from_text(text: str) -> list[str]:
    """Pasted numbers: one a line, or separated by commas or semicolons."""
    return [part.strip() for part in re.split(r"[\r\n,;]+", text) if part.strip()]


def contacts_from_csv(data: bytes, filename: str) -> list[str]:
    """A CSV file's numbers: its number/phone column if it has one, else its first; a header row is optional."""
    not_text = ValidationError(
        f"{filename} is not a CSV text file: save the list as CSV (one number per row) and try again",
        code="INVALID_FILE",
    )
    if b"\x00" in data:
        raise not_text
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            # Spreadsheets on Windows save CSV in the ANSI code page.
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise not_text from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = max(CSV_DELIMITERS, key=first.count) if any(d in first for d in CSV_DELIMITERS) else ","
    try:
        rows = [row for row in csv.reader(lines, delimiter=delimiter) if any(cell.strip() for cell in row)]
    except csv.Error:
        raise not_text from None
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((i for i, name in enumerate(header) if any(word in name for word in CSV_NUMBER_COLUMNS)), None)
    if column is not None:
        rows = rows[1:]
    else:
        column = 0
        # A first row without a single digit in its first cell is a header such as "Name".
        if not any(ch.isdigit() for ch in rows[0][0]):
            rows = rows[1:]
    return [row[column].strip() for row in rows if len(row) > column and row[column].strip()]


def contacts_preview(contacts: object) -> dict:
    """Who a batch of `contacts` would reach, and whom it would skip as invalid or repeated."""
    valid, rejected = _contacts_parse(contacts)
    return {
        "total": len(valid) + len(rejected),
        "valid": [{"position": position, "contact": shown, "phone": phone} for position, shown, phone in valid],
        "invalid": [item for item in rejected if item["error"] != DUPLICATE_ERROR],
        "duplicates": [item for item in rejected if item["error"] == DUPLICATE_ERROR],
    }


def bulk_estimate(session: WaSession, count: int, delay: int) -> dict:
    """What a batch of `count` on `session` would wait for: the delay it would really use (the
    server's floor applies), how often the session's pace lets one of its messages go, and how
    long all take - the same projection its batch page then shows."""
    delay_ms = max(delay, current_app.config["BULK_MIN_DELAY_MS"])
    floor = delay_ms / 1000
    return {
        "delay_ms": delay_ms,
        "every": seconds_per_message(session, floor_seconds=floor),
        "seconds": projected_seconds(session, count, floor_seconds=floor),
    }


def batches_recent(user: User, limit: int = 20) -> list[dict]:
    """The user's latest batches, newest first, each with its session's name and live counts."""
    rows = db.session.execute(
        select(BulkBatch, WaSession.name)
        .join(WaSession, WaSession.id == BulkBatch.session_id)
        .where(BulkBatch.user_id == user.id)
        .order_by(BulkBatch.created_at.desc())
        .limit(limit)
    ).all()
    return [{"batch": batch, "session_name": name, **batch_counts(batch)} for batch, name in rows]


def batch_overview(batch: BulkBatch) -> dict:
    """`batch_report` plus how far along the batch is and, until it ends, how often its
    session's pace lets one of its messages go and, while it runs, when it should finish."""
    report = batch_report(batch)
    done = report["sent"] + report["failed"]
    remaining, every = 0.0, None
    if batch.status in ("running", "scheduled"):
        session = db.session.get(WaSession, batch.session_id)
        every = seconds_per_message(session, floor_seconds=batch.delay_ms / 1000)
    if batch.status == "running":
        remaining = projected_seconds(session, report["pending"], floor_seconds=batch.delay_ms / 1000)
    return {
        **report,
        "done": done,
        "percent": done * 100 // batch.total if batch.total else 100,
        "remainingSeconds": remaining,
        "secondsPerMessage": every,
        "finishAt": utcnow() + timedelta(seconds=remaining) if batch.status == "running" else None,
    }
