"""Domain events: each declared once, published once, and heard over Socket.IO, the SSE
stream and webhooks from the declaration alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from blueprints.dashboard.forms import EVENT_LABELS
from extensions import db, socketio
from models import Webhook
from services.events.bus import event_publish
from services.events.catalog import EVENTS, DomainEvent
from services.events.stream import STREAMED
from services.webhooks import endpoints
from tests.helpers import LOCAL_RECEIVERS, pair_session, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config_overrides() -> dict:
    return LOCAL_RECEIVERS | {"STREAM_HEARTBEAT_SECONDS": 0.5}


def _wire_keys(event: type[DomainEvent]) -> list[str]:
    return [field.alias or name for name, field in event.model_fields.items() if not field.exclude]


def test_every_declared_event_has_what_its_subscribers_need():
    names = [event.name for event in EVENTS]
    assert len(set(names)) == len(names)
    for event in EVENTS:
        # The SSE stream and webhook endpoints of one session find an event by its session.
        assert "session_id" in event.model_fields, event.__name__
        assert "sessionId" in _wire_keys(event), event.__name__
        assert all(re.fullmatch("[a-z][A-Za-z]*", key) for key in _wire_keys(event)), event.__name__
        if event.webhook:
            assert event.webhook in EVENT_LABELS, f"the dashboard has no label for {event.webhook}"
    assert STREAMED == {event.name for event in EVENTS if event.streamed}
    # What endpoints can subscribe to, in the order the API has always listed it.
    assert endpoints.EVENTS == (
        "message.received",
        "message.status",
        "session.connected",
        "session.disconnected",
        "session.qr",
        "bulk.finished",
        "session.paused",
        "presence.update",
        "message.stalled",
        "session.degraded",
        "session.recovered",
        "history.progress",
        "history.completed",
    )


def test_the_dashboard_listens_only_to_declared_events():
    script = (ROOT / "static" / "js" / "app.js").read_text()
    live = script[script.index("function connectLive") : script.index("// Copy buttons")]
    listened = set(re.findall(r'socket\.on\("(\w+)"', live))
    for names in re.findall(r"\[([^\]]*)\]\.forEach\(function \(event\) \{\s*socket\.on\(event", live):
        listened |= set(re.findall(r'"(\w+)"', names))
    listened -= {"connect", "disconnect"}  # the socket's own
    assert {"qr", "session_status", "message_status", "poll_vote", "session_paused"} <= listened
    assert listened <= {event.name for event in EVENTS}


class ShelfRestocked(DomainEvent):
    """An event no service publishes: declared here, it must reach every channel by itself."""

    name = "shelf_restocked"
    webhook = "shelf.restocked"
    streamed = True

    session_id: str
    item_count: int
    restocked_by: str | None = None


def _stream_events(client, account, session_id: str) -> list[dict]:
    """What the session's SSE stream holds, read over HTTP from its start up to the first
    heartbeat (the stream then has nothing more to say)."""
    response = client.get(
        f"/api/sessions/{session_id}/stream", headers=account.headers | {"Last-Event-ID": "0-0"}, buffered=False
    )
    assert response.status_code == 200
    blocks = []
    try:
        for chunk in response.response:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if text.startswith(": heartbeat"):
                return blocks
            for block in text.split("\n\n"):
                fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                if "event" in fields:
                    blocks.append({"event": fields["event"], "data": json.loads(fields["data"])})
    finally:
        response.close()
    return blocks


def test_a_new_event_reaches_socketio_sse_and_webhooks_through_one_publish(
    app, client, runtime, make_account, receiver
):
    account = make_account(plan="starter")
    session_id = pair_session(client, account)
    created = client.post("/api/webhooks", json={"url": receiver.url("/shelf")}, headers=account.headers)
    assert created.status_code == 201, created.get_json()
    webhook_id = created.get_json()["id"]
    with app.app_context():
        # The API offers only the events the server declares; this endpoint wants the test's one.
        db.session.get(Webhook, webhook_id).events = [ShelfRestocked.webhook]
        db.session.commit()
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    other = socketio.test_client(app, flask_test_client=client, auth={"token": make_account().token})
    socket.get_received()
    other.get_received()

    with app.app_context():
        event_publish(account.user_id, ShelfRestocked(session_id=session_id, item_count=12))

    wire = {"sessionId": session_id, "itemCount": 12, "restockedBy": None}
    heard = [packet["args"][0] for packet in socket.get_received() if packet["name"] == "shelf_restocked"]
    # Every channel carries the event log's cursor of the event, the same one.
    cursor = heard[0]["eventId"] if heard else None
    assert re.fullmatch("[0-9a-f]{16}", cursor or "")
    assert heard == [wire | {"eventId": cursor}]
    assert other.get_received() == []
    streamed = _stream_events(client, account, session_id)
    assert streamed[-1] == {"event": "shelf_restocked", "data": wire | {"eventId": cursor}}
    [delivered] = wait_for(lambda: receiver.at("/shelf"), message="the webhook delivery")
    body = json.loads(delivered.body)
    assert (body["event"], body["sessionId"], body["data"]) == ("shelf.restocked", session_id, wire)
    assert body["eventId"] == delivered.headers["X-Wagate-Event-Id"] == cursor
    deliveries = client.get(f"/api/webhooks/{webhook_id}/deliveries", headers=account.headers).get_json()
    assert [d["event"] for d in deliveries["deliveries"]] == ["shelf.restocked"]


def test_the_owner_hears_a_message_status_before_the_batch_progress_it_moves(app, client, growth_session):
    account, session_id = growth_session
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    socket.get_received()
    batch = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": ["919876543210"], "message": "Sale!", "delay": 0},
        headers=account.headers,
    ).get_json()
    packets: list[dict] = []
    wait_for(
        lambda: (
            packets.extend(socket.get_received())
            or any(p["name"] == "bulk_progress" and p["args"][0]["status"] == "finished" for p in packets)
        ),
        message="the finished batch",
    )
    names = [p["name"] for p in packets if p["name"] in {"message_status", "bulk_progress"}]
    first_status = next(p["args"][0] for p in packets if p["name"] == "message_status")
    assert (first_status["batchId"], first_status["status"]) == (batch["batchId"], "sent")
    assert names.index("message_status") < names.index("bulk_progress")
