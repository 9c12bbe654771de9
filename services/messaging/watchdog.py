"""The delivery watchdog: sent messages stuck on their way, found by a deadline and told once.

A message is stalled when, past its deadline:
- WhatsApp never acknowledged it (`no_server_ack`): the engine host took it (an attempt
  spent) and it is still queued WATCHDOG_ACK_SECONDS after its last attempt began (a send
  that hangs, an acknowledgement that never came, a retry that keeps waiting);
- WhatsApp acknowledged it but never confirmed its delivery (`no_delivery_receipt`): still
  "sent" WATCHDOG_DELIVERY_SECONDS later (the recipient's phone may be off; WhatsApp keeps
  trying, so this is a warning, not a failure).
A delivered message that is never read is not stalled: reading is the recipient's choice.

Each message is marked once (`stalled_at`, `stall_reason`; kept once it moves on, as its
history) and its owner hears of it once (`message.stalled`). The engine host holding the
session runs the check (roles/session_watch.py), since only its engine can say whether
WhatsApp has a message; a message never acknowledged is queued again once
(WATCHDOG_RETRY_ONCE) under the same WhatsApp id, and only when the engine knows whether it
went out (`Engine.carried`): then the engine either sends it for the first time or answers
for the copy WhatsApp has, never a second one. While an attempt is under way or was never
confirmed, it is not queued again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from extensions import db
from models import Message, MessageStatus
from models.message import OUTBOUND
from services.events.bus import event_publish_many
from services.events.catalog import MessageStalled

NO_SERVER_ACK = "no_server_ack"
NO_DELIVERY_RECEIPT = "no_delivery_receipt"
STALL_REASONS = (NO_SERVER_ACK, NO_DELIVERY_RECEIPT)
# What each reason means, for people (the dashboard).
STALL_LABELS = {
    NO_SERVER_ACK: "WhatsApp has not acknowledged it",
    NO_DELIVERY_RECEIPT: "WhatsApp has not delivered it yet",
}
# The most stalled messages one check marks (the next check takes the rest).
STALLS_PER_CHECK = 500
# Only messages that reached their deadline this recently are looked at: a watchdog turned on
# (or a host back) after a long time does not report every old message at once.
LOOKBACK_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Stall:
    """A message found stuck, before it is marked."""

    message_id: str
    user_id: str
    session_id: str
    phone: str
    wa_id: str | None
    status: str
    reason: str


def messages_stalled_find(
    session_ids: Collection[str], now: datetime, *, ack_seconds: float, delivery_seconds: float
) -> list[Stall]:
    """The messages of these sessions past their deadline (in the last LOOKBACK_SECONDS) and
    not marked yet, oldest first. A deadline of 0 (or less) is never reached."""
    late = []
    if ack_seconds > 0:
        late.append(and_(Message.status == MessageStatus.QUEUED, Message.attempts > 0, _past(now, ack_seconds)))
    if delivery_seconds > 0:
        late.append(and_(Message.status == MessageStatus.SENT, _past(now, delivery_seconds)))
    if not session_ids or not late:
        return []
    rows = db.session.execute(
        select(Message.id, Message.user_id, Message.session_id, Message.phone, Message.wa_id, Message.status)
        .where(
            Message.session_id.in_(list(session_ids)),
            Message.direction == OUTBOUND,
            Message.stalled_at.is_(None),
            or_(*late),
        )
        .order_by(Message.updated_at)
        .limit(STALLS_PER_CHECK)
    ).all()
    db.session.rollback()  # no transaction held while the engine is asked about them
    return [
        Stall(
            row.id,
            row.user_id,
            row.session_id,
            row.phone,
            row.wa_id,
            row.status,
            NO_SERVER_ACK if row.status == MessageStatus.QUEUED else NO_DELIVERY_RECEIPT,
        )
        for row in rows
    ]


def _past(now: datetime, deadline: float):
    """Its last move was `deadline` seconds ago or more, but not LOOKBACK_SECONDS more."""
    reached = now - timedelta(seconds=deadline)
    return Message.updated_at.between(reached - timedelta(seconds=LOOKBACK_SECONDS), reached)


def messages_stalled_mark(
    stalls: list[Stall],
    now: datetime,
    *,
    details: Mapping[str, str],
    retry: Callable[[Stall], bool],
) -> list[Stall]:
    """Mark each message stalled, once (one another check marked first, or that moved on
    meanwhile, is left alone); then `retry` each marked one (whether it was queued again) and
    tell the owners, with what WhatsApp last said about each (`details`, by message id).
    Returns the stalls marked."""
    marked: list[Stall] = []
    for stall in stalls:
        done = db.session.execute(
            update(Message)
            .where(Message.id == stall.message_id, Message.stalled_at.is_(None), Message.status == stall.status)
            # updated_at stays: it dates the message's last move, which this is not.
            .values(stalled_at=now, stall_reason=stall.reason, updated_at=Message.updated_at)
            .execution_options(synchronize_session=False)
        ).rowcount
        if done:
            marked.append(stall)
    db.session.commit()
    by_user: dict[str, list[MessageStalled]] = {}
    for stall in marked:
        by_user.setdefault(stall.user_id, []).append(
            MessageStalled(
                message_id=stall.message_id,
                session_id=stall.session_id,
                to=stall.phone,
                status=stall.status,
                reason=stall.reason,
                detail=details.get(stall.message_id),
                retried=retry(stall),
                timestamp=now,
            )
        )
    for user_id, events in by_user.items():
        event_publish_many(user_id, events)
    return marked
