"""What the engine host watches in its sessions, in the embedded runtime on the simulator: sends
WhatsApp never acknowledged (the delivery watchdog) and sessions gone deaf (the probe)."""

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from extensions import db, socketio
from models import Message
from models.base import utcnow
from tests.dashboard import DashboardUser
from tests.helpers import LOCAL_RECEIVERS, wait_for

CONTACT = "447911123456"
ACK_SECONDS = 1.0
PROBE_SECONDS = 2.0
HEARTBEAT_SECONDS = 0.5


@pytest.fixture
def config_overrides() -> dict:
    return {
        "SEND_WAIT_SECONDS": 0,
        "ENGINE_HOST_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS,
        "WATCHDOG_INTERVAL_SECONDS": 0,  # at every heartbeat
        "WATCHDOG_ACK_SECONDS": ACK_SECONDS,
        "DEAF_PROBE_SECONDS": PROBE_SECONDS,
        **LOCAL_RECEIVERS,
    }


@pytest.fixture
def shop_owner(starter):
    """A plan with webhooks."""
    return starter


class Heard:
    """The Socket.IO events a user's client received, by name, kept as they come."""

    def __init__(self, app, client, starter) -> None:
        self.socket = socketio.test_client(app, flask_test_client=client, auth={"token": starter.token})
        self.events: list[tuple[str, dict]] = []

    def __call__(self, name: str) -> list[dict]:
        for packet in self.socket.get_received():
            args = packet.get("args")
            self.events.append((packet["name"], args[0] if isinstance(args, list) and args else args))
        return [payload for event, payload in self.events if event == name]


def _send(client, starter, shop, text: str) -> str:
    answer = client.post(f"/api/sessions/{shop}/send", json={"to": CONTACT, "message": text}, headers=starter.headers)
    assert answer.status_code in (200, 202), answer.get_json()
    return answer.get_json()["messageId"]


def _message(client, starter, message_id: str) -> dict:
    return client.get(f"/api/messages/{message_id}", headers=starter.headers).get_json()


def test_a_send_whatsapp_never_acknowledges_stalls_by_its_deadline_and_goes_out_once(
    app, client, starter, shop, runtime, receiver
):
    heard = Heard(app, client, starter)
    hook = {"url": receiver.url(), "events": ["message.stalled"]}
    assert client.post("/api/webhooks", json=hook, headers=starter.headers).status_code == 201
    faults = f"/api/simulator/faults?sessionId={shop}"
    client.put(faults, json={"ack_never_comes": True}, headers=starter.headers)
    message_id = _send(client, starter, shop, "Where is my order?")
    started = time.monotonic()

    [stalled] = wait_for(lambda: heard("message_stalled"), timeout=ACK_SECONDS + 3, message="message.stalled")
    assert time.monotonic() - started < ACK_SECONDS + 2 * HEARTBEAT_SECONDS  # its deadline and one look
    assert {key: stalled[key] for key in ("messageId", "sessionId", "to", "status", "reason", "retried")} == {
        "messageId": message_id,
        "sessionId": shop,
        "to": CONTACT,
        "status": "queued",
        "reason": "no_server_ack",
        "retried": False,  # its attempt is still waiting: sending it again might deliver it twice
    }
    message = _message(client, starter, message_id)
    assert (message["status"], message["stallReason"]) == ("queued", "no_server_ack") and message["stalledAt"]
    assert runtime.engine_host.engine.outbox(shop) == []
    [delivery] = wait_for(lambda: receiver.succeeded, message="the message.stalled webhook")
    body = json.loads(delivery.body)
    assert (body["event"], body["data"]["messageId"], body["data"]["reason"]) == (
        "message.stalled",
        message_id,
        "no_server_ack",
    )

    dashboard = DashboardUser(client, starter)
    page = dashboard.client.get("/messages?status=stalled").get_data(as_text=True)
    assert message_id in page and "Stalled: WhatsApp has not acknowledged it" in page

    client.delete(faults, headers=starter.headers)  # the ack comes at last
    wait_for(lambda: _message(client, starter, message_id)["status"] == "read", message="its read receipt")
    wa_id = _message(client, starter, message_id)["waMessageId"]
    assert [entry["id"] for entry in runtime.engine_host.engine.outbox(shop)] == [wa_id]
    assert len(heard("message_stalled")) == 1
    page = dashboard.client.get("/messages?status=stalled").get_data(as_text=True)
    assert message_id not in page  # it moved on


def test_a_send_whose_outcome_was_lost_is_queued_again_once_and_not_carried_twice(app, client, starter, shop, runtime):
    heard = Heard(app, client, starter)
    message_id = _send(client, starter, shop, "Your table is ready")
    wait_for(lambda: _message(client, starter, message_id)["status"] == "read", message="its read receipt")
    wa_id = _message(client, starter, message_id)["waMessageId"]
    with app.app_context():  # as if its host died after WhatsApp's ack, before writing it
        db.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(
                status="queued",
                sent_at=None,
                delivered_at=None,
                read_at=None,
                updated_at=utcnow() - timedelta(seconds=5),
            )
        )
        db.session.commit()

    [stalled] = wait_for(lambda: heard("message_stalled"), timeout=3, message="message.stalled")
    assert (stalled["messageId"], stalled["reason"], stalled["retried"]) == (message_id, "no_server_ack", True)
    wait_for(lambda: _message(client, starter, message_id)["status"] == "sent", message="the send settled again")
    assert [entry["id"] for entry in runtime.engine_host.engine.outbox(shop)] == [wa_id]  # answered, not sent again
    message = _message(client, starter, message_id)
    assert message["stallReason"] == "no_server_ack" and len(heard("message_stalled")) == 1


def test_a_deaf_session_is_found_reconnected_and_recovered_within_two_probe_intervals(
    app, client, starter, shop, runtime
):
    heard = Heard(app, client, starter)
    client.put(f"/api/simulator/faults?sessionId={shop}", json={"deaf": True}, headers=starter.headers)
    started = time.monotonic()
    inbound = client.post(
        f"/api/simulator/sessions/{shop}/inbound",
        json={"from": CONTACT, "message": "Are you open?"},
        headers=starter.headers,
    )
    assert inbound.status_code in (200, 202), inbound.get_json()

    [recovered] = wait_for(lambda: heard("session_recovered"), timeout=2 * PROBE_SECONDS + 2, message="recovered")
    assert time.monotonic() - started <= 2 * PROBE_SECONDS
    [degraded] = heard("session_degraded")
    assert degraded["sessionId"] == shop and degraded["deafCount"] == 1
    assert "keep-alive went unanswered" in degraded["reason"]
    assert recovered["sessionId"] == shop and 0 <= recovered["deafSeconds"] <= PROBE_SECONDS
    assert "disconnected" not in [name for name, _ in heard.events]  # reconnected, never let go of
    # What WhatsApp kept for it while it was deaf arrives on the new connection.
    [message] = wait_for(lambda: heard("message"), message="the inbound message it missed")
    assert message["message"] == "Are you open?"
    session = client.get(f"/api/sessions/{shop}", headers=starter.headers).get_json()
    assert (session["status"], session["deafCount"], session["deafSince"]) == ("connected", 1, None)


@pytest.mark.parametrize(
    "config_overrides",
    [{"ENGINE_HOST_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS, "DEAF_PROBE_SECONDS": 60, "DEAF_RECEIPT_SECONDS": 0.5}],
)
def test_receipts_that_stop_coming_after_sends_get_a_deaf_session_checked_before_its_interval(
    app, client, starter, shop, runtime
):
    heard = Heard(app, client, starter)
    client.put(f"/api/simulator/faults?sessionId={shop}", json={"deaf": True}, headers=starter.headers)
    wait_for(lambda: runtime.engine_host.engine.probe(shop) is False, message="the session going deaf")
    message_id = _send(client, starter, shop, "Your parcel is on its way")

    [degraded] = wait_for(lambda: heard("session_degraded"), timeout=5, message="session.degraded")
    assert "no receipt for sends acknowledged" in degraded["reason"]
    wait_for(lambda: heard("session_recovered"), message="session.recovered")
    # The receipts it missed came on its new connection.
    wait_for(lambda: _message(client, starter, message_id)["status"] == "read", message="its read receipt")
