"""The database is the record: a send that is stored is answered as accepted whatever Redis
does after the commit, and the relay (services/messaging/relay.py) hands it over once Redis
is back; after Redis loses its data the relay lines up every queued and scheduled message
again and resumes bulk dispatching and webhook retries. Nothing is ever sent twice.

The relay's own thread (in the runtime) is held back here: each test runs its passes itself,
with a clock past the grace period.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select, update

from extensions import db, queues
from models import Message, MessageStatus, WaSession
from services.governor.pace import send_queue, session_pause
from services.governor.queue import SendQueue, send_queues_holding
from services.hosts.calls import messages_enqueue
from services.messaging.relay import SWEEP_SECONDS, Relay
from services.messaging.stats import PERIODIC_KEY
from tests.helpers import LOCAL_RECEIVERS, database_down, pair_session, wait_for

GRACE = 5.0


RELAY_CONFIG = {
    "RELAY_INTERVAL_SECONDS": 3600.0,  # the runtime's relay never passes on its own here
    "RELAY_GRACE_SECONDS": GRACE,
    "BULK_WAIT_SECONDS": 0.0,
}


@pytest.fixture
def config_overrides():
    return RELAY_CONFIG


def _later(seconds: float = GRACE + 1) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _relay_pass(app, relay: Relay, now: datetime | None = None):
    with app.app_context():
        return relay.pass_once(now or _later())


def _send(client, account, session_id: str, **body):
    body = {"to": "919812345678", "message": "Hello", **body}
    headers = {**account.headers, **body.pop("headers", {})}
    return client.post(f"/api/sessions/{session_id}/send", json=body, headers=headers)


def _message(app, message_id: str) -> Message:
    with app.app_context():
        message = db.session.get(Message, message_id)
        db.session.expunge(message)
        return message


def _outbox(runtime, session_id: str) -> list[dict]:
    return runtime.engine_host.engine.outbox(session_id)


def _held(app, *message_ids: str) -> set[str]:
    with app.app_context():
        pairs = [(db.session.get(Message, message_id).session_id, message_id) for message_id in message_ids]
        return send_queues_holding(queues.connection, pairs)


def _sent(app, message_id: str) -> bool:
    return _message(app, message_id).status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


@pytest.fixture
def redis_drops_hand_offs(monkeypatch):
    """Redis drops the connection when a send is handed over (after its commit)."""

    def dropped(self, message_ids, **kwargs):
        raise redis.exceptions.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(SendQueue, "push_many", dropped)
    return monkeypatch


def test_a_send_redis_cannot_take_is_accepted_and_the_relay_sends_it_once(
    app, client, runtime, shop, account, redis_drops_hand_offs
):
    started = time.monotonic()
    response = _send(client, account, shop)
    assert time.monotonic() - started < 2  # not SEND_WAIT_SECONDS: nothing would answer
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert answer["status"] == "queued" and answer["success"] is True
    redis_drops_hand_offs.undo()  # Redis is back
    message_id = answer["messageId"]
    stored = _message(app, message_id)
    assert stored.status == MessageStatus.QUEUED and stored.dispatched_at is not None
    assert _held(app, message_id) == set()

    relay = Relay(app)
    first = _relay_pass(app, relay)
    assert first.leading and message_id not in first.lined_up  # missing once: it may be in flight
    second = _relay_pass(app, relay)
    assert second.lined_up == [message_id]
    wait_for(lambda: _sent(app, message_id), message="the relayed message to be sent")
    assert [line["id"] for line in _outbox(runtime, shop)] == [stored.wa_id]
    assert _relay_pass(app, relay).lined_up == []
    assert _relay_pass(app, relay).looked_at == 0  # the cursor has moved past it


def test_a_message_that_leaves_redis_after_the_relay_looked_is_found_again(app, client, runtime, shop, account):
    """Taken from Redis by an engine host that could not claim it (the database was away):
    long after the cursor passed it, the sweep after the outage (and every minute) finds it."""
    with app.app_context():
        session_pause(db.session.get(WaSession, shop), "held for the test")
    message_id = _send(client, account, shop).get_json()["messageId"]
    relay = Relay(app)
    assert relay.pass_logged(_later()).looked_at == 1  # the first sweep: it is in Redis
    with app.app_context():
        send_queue(shop).clear()  # gone from Redis, never claimed
    assert relay.pass_logged(_later()).looked_at == 0  # the cursor is past it

    with database_down(app):
        assert relay.pass_logged(_later()) is None  # the relay lives through an outage...
    assert message_id not in relay.pass_logged(_later()).lined_up  # ...then looks at everything
    assert relay.pass_logged(_later()).lined_up == [message_id]

    with app.app_context():
        send_queue(shop).clear()
    assert relay.pass_logged(_later()).looked_at == 0
    sweep = GRACE + SWEEP_SECONDS + 1
    assert relay.pass_logged(_later(sweep)).looked_at == 1  # every minute, everything
    assert relay.pass_logged(_later(sweep)).lined_up == [message_id]
    assert client.post(f"/api/sessions/{shop}/resume", headers=account.headers).status_code == 200
    wait_for(lambda: _sent(app, message_id), message="the message to be sent")
    assert len(_outbox(runtime, shop)) == 1


def test_a_message_the_engine_host_is_sending_is_left_alone(app, client, runtime, shop, account, redis_drops_hand_offs):
    """Taken from the queue and being sent (an attempt spent, a moment ago): not in Redis,
    and not lined up again until RELAY_IN_FLIGHT_SECONDS have passed."""
    message_id = _send(client, account, shop).get_json()["messageId"]
    redis_drops_hand_offs.undo()
    with app.app_context():
        db.session.execute(update(Message).where(Message.id == message_id).values(attempts=1))
        db.session.commit()
    relay = Relay(app)
    for _ in range(3):
        assert _relay_pass(app, relay).lined_up == []
    # Missing at every pass since, unchanged: once the attempt is that old, it was lost.
    in_flight = app.config["RELAY_IN_FLIGHT_SECONDS"]
    assert _relay_pass(app, relay, _later(in_flight + 1)).lined_up == [message_id]
    wait_for(lambda: _sent(app, message_id), message="the message to be sent")
    assert len(_outbox(runtime, shop)) == 1


def test_a_message_lined_up_again_is_still_sent_once(app, client, runtime, shop, account):
    """Whatever a relay with stale knowledge lines up twice: the queue takes an id once, the
    engine host sends only what the database still calls queued, and the engine recognises a
    message it sent already by its WhatsApp id."""
    message_id = _send(client, account, shop).get_json()["messageId"]
    wait_for(lambda: _sent(app, message_id), message="the message to be sent")

    def line_up_again() -> None:
        with app.app_context():
            message = db.session.get(Message, message_id)
            messages_enqueue(db.session.get(WaSession, shop), [message])

    line_up_again()  # sent already: the claim leaves it out
    time.sleep(0.5)
    assert len(_outbox(runtime, shop)) == 1
    assert _message(app, message_id).attempts == 1

    # Its outcome was lost (the database still says queued): sent again through the engine,
    # which answers for the message it already sent.
    with app.app_context():
        db.session.execute(update(Message).where(Message.id == message_id).values(status=MessageStatus.QUEUED))
        db.session.commit()
    line_up_again()
    wait_for(lambda: _message(app, message_id).attempts == 2, message="a second attempt")
    wait_for(lambda: _sent(app, message_id), message="the message to be sent again")
    assert [line["id"] for line in _outbox(runtime, shop)] == [_message(app, message_id).wa_id]

    # Already in the queue: lining it up again adds nothing.
    with app.app_context():
        queue = send_queue(shop)
        assert queue.push("another-id") is True
        assert queue.push("another-id") is False
        queue.clear()


def test_after_redis_lost_its_data_everything_stored_is_sent_once(app, client, runtime, growth_session):
    account, session_id = growth_session
    with app.app_context():
        session_pause(db.session.get(WaSession, session_id), "held for the test")  # everything waits in Redis
    singles = [_send(client, account, session_id, to=f"91981234567{i}").get_json()["messageId"] for i in range(2)]
    at = datetime.now(UTC) + timedelta(seconds=4)
    scheduled = _send(client, account, session_id, to="919812340001", sendAt=at.isoformat())
    assert scheduled.status_code == 202 and scheduled.get_json()["status"] == "scheduled"
    contacts = [f"91987{i:07d}" for i in range(1, 121)]
    running = client.post(
        "/api/whatsapp/bulk-send", json={"contacts": contacts, "message": "All", "delay": 0}, headers=account.headers
    )
    assert running.status_code == 202, running.get_json()
    later_contacts = [f"91986{i:07d}" for i in range(1, 4)]
    later_batch = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": later_contacts, "message": "Later", "delay": 0, "sendAt": at.isoformat()},
        headers=account.headers,
    )
    assert later_batch.status_code == 202, later_batch.get_json()

    def dispatched() -> bool:
        with app.app_context():
            batch_id = running.get_json()["batchId"]
            rows = db.session.scalars(select(Message.dispatched_at).where(Message.batch_id == batch_id)).all()
            return all(rows)

    wait_for(dispatched, message="the running batch to be handed over")
    relay = Relay(app)
    assert _relay_pass(app, relay).lined_up == []  # all of it waits in Redis

    with app.app_context():
        queues.connection.flushall()  # Redis restarted without its data
    lost = _relay_pass(app, relay)
    assert lost.data_lost
    assert len(lost.lined_up) == 2 + 1 + 120  # the later batch is not dispatched yet: bulk_resume does it
    with app.app_context():
        assert queues.connection.exists(PERIODIC_KEY)

    assert client.post(f"/api/sessions/{session_id}/resume", headers=account.headers).status_code == 200
    every = 2 + 1 + 120 + 3

    def all_sent() -> bool:
        with app.app_context():
            statuses = db.session.scalars(select(Message.status).where(Message.session_id == session_id)).all()
        return (
            len(statuses) == every
            and all(status != MessageStatus.QUEUED for status in statuses)
            and (MessageStatus.SCHEDULED not in statuses)
        )

    wait_for(all_sent, timeout=30, message="every stored message to be sent")
    outbox = _outbox(runtime, session_id)
    assert len(outbox) == every
    assert len({line["id"] for line in outbox}) == every
    assert sorted(line["to"] for line in outbox if line["to"] in contacts) == contacts
    assert sorted(line["to"] for line in outbox if line["to"] in later_contacts) == later_contacts
    scheduled_line = next(line for line in outbox if line["to"] == "919812340001")
    assert datetime.fromisoformat(scheduled_line["at"]) >= at - timedelta(seconds=1)
    assert all(_sent(app, message_id) for message_id in singles)


@pytest.mark.parametrize("config_overrides", [{**RELAY_CONFIG, **LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": [3] * 5}])
def test_a_webhook_retry_lost_with_redis_is_delivered_once(app, client, runtime, starter, receiver):
    """A delivery waiting for its retry lived only in Redis; after Redis lost its data the
    relay enqueues it again, and the receiver gets it once."""
    session_id = pair_session(client, starter)
    relay = Relay(app)
    _relay_pass(app, relay)  # the relay knows where Redis stands
    created = client.post(
        "/api/webhooks", json={"url": receiver.url(), "events": ["message.received"]}, headers=starter.headers
    )
    assert created.status_code == 201, created.get_json()
    receiver.answer(503)
    inbound = client.post(
        f"/api/simulator/sessions/{session_id}/inbound",
        json={"from": "447911123456", "message": "Where is my order?"},
        headers=starter.headers,
    )
    assert inbound.status_code in (200, 202), inbound.get_json()
    wait_for(lambda: receiver.received, message="the first (failing) attempt")
    with app.app_context():
        queues.connection.flushall()  # the retry, 3 s later, was only in Redis
    assert _relay_pass(app, relay).data_lost
    wait_for(lambda: receiver.succeeded, timeout=15, message="the retried delivery")
    time.sleep(1.0)
    assert [request.answered for request in receiver.received] == [503, 200]
    assert len({request.delivery_id for request in receiver.received}) == 1


def test_a_batch_whose_dispatching_never_started_is_started_by_the_relay(
    app, client, runtime, growth_session, monkeypatch
):
    account, session_id = growth_session
    from rq import Queue

    enqueue = Queue.enqueue

    def dropped(self, func, *args, **kwargs):
        if kwargs.get("job_id", "").startswith("dispatch-"):
            raise redis.exceptions.ConnectionError("Connection reset by peer")
        return enqueue(self, func, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue", dropped)
    contacts = [f"91985{i:07d}" for i in range(1, 6)]
    response = client.post(
        "/api/whatsapp/bulk-send", json={"contacts": contacts, "message": "Hi", "delay": 0}, headers=account.headers
    )
    assert response.status_code == 202, response.get_json()
    batch_id = response.get_json()["batchId"]
    monkeypatch.undo()

    relay = Relay(app)
    quiet = _later(60)
    assert _relay_pass(app, relay, quiet).batches_resumed == []  # stalled once: maybe just slow
    assert _relay_pass(app, relay, quiet).batches_resumed == [batch_id]
    report = lambda: client.get(f"/api/whatsapp/bulk-send/{batch_id}", headers=account.headers).get_json()  # noqa: E731
    wait_for(lambda: report()["status"] == "finished", message="the batch to finish")
    assert report()["sent"] == 5
    assert sorted(line["to"] for line in _outbox(runtime, session_id)) == contacts


def test_a_retry_with_the_idempotency_key_sends_once_through_an_outage(
    app, client, runtime, shop, account, monkeypatch
):
    """Refused before it was stored (503), then retried; accepted while Redis dropped the
    hand-off, then retried again after a timeout: one message, sent once."""
    from services.messaging import sending

    def down(session_id):
        raise redis.exceptions.ConnectionError("Connection refused")

    key = {"Idempotency-Key": "order-1234"}
    used = client.get("/api/quota", headers=account.headers).get_json()["quota"]["used"]
    monkeypatch.setattr(sending, "session_overloaded_for", down)
    refused = _send(client, account, shop, headers=key)
    assert refused.status_code == 503 and refused.get_json()["code"] == "QUEUE_UNAVAILABLE"
    assert refused.headers["Retry-After"] == "5"
    monkeypatch.undo()
    assert client.get("/api/quota", headers=account.headers).get_json()["quota"]["used"] == used

    def dropped(self, message_ids, **kwargs):
        raise redis.exceptions.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(SendQueue, "push_many", dropped)
    accepted = _send(client, account, shop, headers=key)
    monkeypatch.undo()
    assert accepted.status_code == 202
    again = _send(client, account, shop, headers=key)
    assert again.get_json()["messageId"] == accepted.get_json()["messageId"]
    with app.app_context():
        keyed = db.session.scalars(select(Message.id).where(Message.idempotency_key == "order-1234")).all()
    assert keyed == [accepted.get_json()["messageId"]]

    relay = Relay(app)
    _relay_pass(app, relay)
    _relay_pass(app, relay)
    wait_for(lambda: _sent(app, keyed[0]), message="the message to be sent")
    assert len(_outbox(runtime, shop)) == 1
    assert client.get("/api/quota", headers=account.headers).get_json()["quota"]["used"] == used + 1
