"""The event log: a consumer that stopped listening pages through what it missed, in order,
none twice, only its own; old events and webhook deliveries are pruned."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from extensions import db, socketio
from models import Event, Webhook, WebhookAttempt, WebhookDelivery
from models.base import as_utc, new_id, utcnow
from models.webhook import DeliveryStatus
from services.events.bus import event_publish
from services.events.catalog import SessionResumed
from services.platform.retention import retention_prune
from tests.helpers import wait_for


def _page_all(client, account, after: str, **query) -> tuple[list[dict], str]:
    """Every event after `after`, a small page at a time, as a consumer catching up does."""
    events: list[dict] = []
    while True:
        answer = client.get("/api/events", query_string={"after": after, "limit": 2, **query}, headers=account.headers)
        assert answer.status_code == 200, answer.get_json()
        page = answer.get_json()
        events += page["events"]
        after = page["next"]
        if not page["hasMore"]:
            return events, after


def _read(client, account, message_id: str) -> bool:
    answer = client.get(f"/api/messages/{message_id}", headers=account.headers).get_json()
    return answer["status"] == "read"


def test_a_consumer_that_was_away_replays_every_event_it_missed_in_order_once(
    app, client, shop, shop_owner, make_account
):
    owner = shop_owner
    stranger = make_account()
    start = client.get("/api/events", query_string={"limit": 1000}, headers=owner.headers).get_json()
    assert start["success"] is True and start["hasMore"] is False
    # Live all along: what Socket.IO heard is what the consumer that was away must replay.
    live = socketio.test_client(app, flask_test_client=client, auth={"token": owner.token})
    live.get_received()

    sent = []
    for text in ("one", "two"):
        answer = client.post(
            f"/api/sessions/{shop}/send", json={"to": "919811112222", "message": text}, headers=owner.headers
        )
        sent.append(answer.get_json()["messageId"])
    client.post(
        f"/api/simulator/sessions/{shop}/inbound",
        json={"from": "919811112222", "message": "Thanks"},
        headers=owner.headers,
    )
    with app.app_context():
        event_publish(stranger.user_id, SessionResumed(session_id=new_id()))  # somebody else's
    wait_for(lambda: all(_read(client, owner, message_id) for message_id in sent), message="both messages read")

    replayed, last = _page_all(client, owner, start["next"])
    # Socket.IO's test client hands a `message` event's payload over bare, others in a list.
    heard = [p["args"] if p["name"] == "message" else p["args"][0] for p in live.get_received()]
    assert [event["id"] for event in replayed] == [payload["eventId"] for payload in heard]
    ids = [event["id"] for event in replayed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and last == ids[-1]
    assert {event["sessionId"] for event in replayed} == {shop}
    for message_id in sent:
        statuses = [
            e["data"]["status"]
            for e in replayed
            if e["type"] == "message_status" and e["data"]["messageId"] == message_id
        ]
        assert statuses == ["sent", "delivered", "read"]
    [inbound] = [event for event in replayed if event["type"] == "message"]
    assert (inbound["data"]["from"], inbound["data"]["message"]) == ("919811112222", "Thanks")

    # Caught up: nothing more, and the cursor stays where it is.
    again = client.get("/api/events", query_string={"after": last}, headers=owner.headers).get_json()
    assert (again["events"], again["next"], again["hasMore"]) == ([], last, False)
    only, _ = _page_all(client, owner, start["next"], types="message,session_paused", sessionId=shop)
    assert only == [inbound]
    theirs = client.get("/api/events", headers=stranger.headers).get_json()["events"]
    assert [event["type"] for event in theirs] == ["session_resumed"]


def test_a_bad_cursor_type_or_session_is_refused_in_the_documented_shape(client, account):
    for query, code in (
        ({"after": "yesterday"}, "INVALID_CURSOR"),
        ({"types": "message,gossip"}, "INVALID_TYPES"),
        ({"limit": "0"}, "INVALID_FIELD"),
    ):
        answer = client.get("/api/events", query_string=query, headers=account.headers)
        assert answer.status_code == 400, query
        body = answer.get_json()
        assert body["code"] == code and set(body) >= {"error", "message", "code"}
    missing = client.get("/api/events", query_string={"sessionId": new_id()}, headers=account.headers)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "SESSION_NOT_FOUND")
    assert client.get("/api/events").status_code == 401


def test_pruning_removes_old_events_and_settled_deliveries_and_keeps_the_rest(app, account):
    now = utcnow()
    old, recent = now - timedelta(days=8), now - timedelta(days=1)
    with app.app_context():
        db.session.add_all(
            Event(user_id=account.user_id, type="session_resumed", payload={}, created_at=moment)
            for moment in (old, old, recent)
        )
        webhook = Webhook(user_id=account.user_id, url="https://example.com/hook", events=[], secret="whsec_x")
        db.session.add(webhook)
        db.session.flush()
        deliveries = {
            (moment, status): WebhookDelivery(
                webhook_id=webhook.id,
                user_id=account.user_id,
                event="message.status",
                body="{}",
                status=status,
                created_at=moment,
            )
            for moment in (now - timedelta(days=31), recent)
            for status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD, DeliveryStatus.FAILED)
        }
        db.session.add_all(deliveries.values())
        db.session.flush()
        db.session.add_all(WebhookAttempt(delivery_id=delivery.id, number=1) for delivery in deliveries.values())
        db.session.commit()

        pruned = retention_prune(now)
        assert (pruned.events, pruned.deliveries) == (2, 2)
        assert [as_utc(moment) for moment in db.session.scalars(select(Event.created_at))] == [recent]
        kept = set(db.session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)))
        assert kept == {(DeliveryStatus.SUCCEEDED, 1), (DeliveryStatus.DEAD, 1), (DeliveryStatus.FAILED, 2)}
        assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 4
