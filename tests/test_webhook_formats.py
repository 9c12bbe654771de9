"""Webhook formats: an endpoint receives its deliveries as wagate, aulm, the self-hosted
gateway or Standard Webhooks send them, checked by each one's own verifier, on a real
receiver on loopback; retries and redeliveries keep the format a delivery was made in."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.dashboard import DashboardUser
from tests.helpers import LOCAL_RECEIVERS, SHOP_PHONE, wait_for
from tests.receiver import Received, Receiver
from tests.test_webhooks import _create, _deliveries, _inbound, _settled, readme_verify

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")
AULM_DOC = (ROOT / "docs/reference/aulm-api.txt").read_text()


@pytest.fixture
def config_overrides() -> dict:
    return LOCAL_RECEIVERS


@pytest.fixture
def shop_owner(starter):
    return starter


@pytest.fixture
def other_receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def _headers(request: Received) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def _aulm_example(event: str) -> dict:
    """The example body aulm's document prints for `event`."""
    start = AULM_DOC.index(f'{{ "event": "{event}"')
    return json.JSONDecoder().raw_decode(AULM_DOC, start)[0]


def _aulm_verifier() -> str:
    """aulm's Node.js verifier, exactly as its document prints it."""
    start = AULM_DOC.index('const crypto = require("crypto");')
    end = AULM_DOC.index("}Events", start) + 1
    return AULM_DOC[start:end]


def _send(client, account, session_id: str, text: str = "Your order shipped") -> str:
    response = client.post(
        f"/api/sessions/{session_id}/send", json={"to": "919876543210", "message": text}, headers=account.headers
    )
    assert response.status_code in (200, 201, 202), response.get_json()
    return response.get_json()["messageId"]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_aulms_own_node_verifier_accepts_an_aulm_delivery(client, starter, receiver, shop, tmp_path):
    created = _create(client, starter, receiver.url(), format="aulm")
    assert created["format"] == "aulm"
    _inbound(client, starter, shop, text="Is my order ready?")
    [request] = wait_for(lambda: receiver.received, message="the aulm delivery")
    headers = _headers(request)
    assert headers["x-aulm-event"] == "inbound_message" and headers["x-aulm-attempt"] == "1"
    assert not any(name.startswith("x-wagate") for name in headers)

    script = tmp_path / "verify.js"
    script.write_text(
        _aulm_verifier()
        + """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const rawBody = Buffer.from(input.body, "base64").toString("utf8");
console.log(JSON.stringify([
  verifyAulmSignature(rawBody, input.header, input.secret),
  verifyAulmSignature(rawBody.replace("ready", "READY"), input.header, input.secret),
  verifyAulmSignature(rawBody, input.header, "whsec_" + "0".repeat(64)),
]));
"""
    )
    payload = {
        "body": base64.b64encode(request.body).decode(),
        "header": headers["x-aulm-signature"],
        "secret": created["secret"],
    }
    result = subprocess.run(
        [NODE, str(script)], input=json.dumps(payload), capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout) == [True, False, False]

    # The body is aulm's, field for field.
    body = json.loads(request.body)
    example = _aulm_example("inbound_message")
    assert set(body) == set(example) and set(body["message"]) == set(example["message"])
    assert (body["event"], body["delivery_id"], body["session_id"], body["test"]) == (
        "inbound_message",
        headers["x-aulm-delivery-id"],
        shop,
        False,
    )
    message = body["message"]
    assert (message["from"], message["to"], message["body"], message["type"]) == (
        "447911123456",
        SHOP_PHONE,
        "Is my order ready?",
        "text",
    )
    assert (message["is_group"], message["from_me"], message["chat_id"]) == (False, False, "447911123456")
    assert body["timestamp"].endswith("Z") and message["received_at"].endswith("Z")


def test_aulm_gets_message_status_in_its_shape_and_none_of_the_events_it_does_not_have(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url(), format="aulm")
    message_id = _send(client, starter, shop)
    client.post(f"/api/sessions/{shop}/disconnect", headers=starter.headers)

    def statuses():
        bodies = [json.loads(r.body) for r in receiver.received]
        return [b["status"] for b in bodies if b.get("message_id") == message_id]

    wait_for(lambda: "read" in statuses(), timeout=20, message="the read status")
    example = _aulm_example("message_status")
    for request in receiver.received:
        assert _headers(request)["x-aulm-event"] == "message_status"
        body = json.loads(request.body)
        assert set(body) == set(example) and body["event"] == "message_status"
        assert body["status"] in ("sent", "delivered", "read", "played", "failed")
        assert (body["from"], body["to"], body["session_id"]) == (SHOP_PHONE, "919876543210", shop)
    assert statuses()[0] == "sent"
    # No session.disconnected reached the endpoint, and its log has none either.
    assert {d["event"] for d in _deliveries(client, starter, created["id"])} == {"message.status"}
    assert all(d["format"] == "aulm" for d in _deliveries(client, starter, created["id"]))


def test_the_aulm_test_event_is_an_inbound_message_marked_test(client, runtime, starter, receiver):
    created = _create(client, starter, receiver.url(), format="aulm")
    client.post(f"/api/webhooks/{created['id']}/test", headers=starter.headers)
    [request] = wait_for(lambda: receiver.received, message="the test delivery")
    body = json.loads(request.body)
    assert _headers(request)["x-aulm-event"] == "inbound_message"
    assert body["test"] is True and set(body) == set(_aulm_example("inbound_message"))


def test_a_standard_webhooks_delivery_verifies_with_the_library(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url(), format="standard", events=["message.received"])
    receiver.answer(500)
    _inbound(client, starter, shop, text="Hello there")
    wait_for(lambda: len(receiver.succeeded) == 1, timeout=20, message="the retry")
    [delivery] = _settled(client, starter, created["id"])
    first, second = receiver.received
    for request in (first, second):
        headers = _headers(request)
        assert headers["webhook-id"] == delivery["id"] and headers["webhook-timestamp"].isdigit()
        # Every attempt names the event's cursor in the event log, as the delivery log does.
        assert headers["x-wagate-event-id"] == delivery["eventId"] and re.fullmatch("[0-9a-f]{16}", delivery["eventId"])
        assert re.fullmatch(r"v1,[A-Za-z0-9+/]+={0,2}", headers["webhook-signature"])
        # The endpoint's secret, as wagate shows it, is the library's secret.
        body = StandardWebhook(created["secret"]).verify(request.body, request.headers)
        assert body["type"] == "message.received" and body["data"]["message"] == "Hello there"
        assert set(body) == {"type", "timestamp", "data"} and body["data"]["sessionId"] == shop
    assert first.body == second.body  # a retry sends the same bytes under the same webhook-id
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(created["secret"]).verify(first.body.replace(b"Hello", b"HELLO"), first.headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(first.body, first.headers)
    assert (delivery["format"], delivery["attempts"], delivery["status"]) == ("standard", 2, "succeeded")


def test_the_selfhosted_format_has_the_gateways_body_and_events(client, starter, receiver, other_receiver, shop):
    _create(client, starter, other_receiver.url(), events=["message.status"])

    def witness_bodies():
        return [json.loads(r.body) for r in other_receiver.received]

    created = _create(
        client,
        starter,
        receiver.url(),
        format="selfhosted",
        events=["message.received", "message.status", "session.disconnected", "presence.update"],
    )
    _inbound(client, starter, shop, text="Any news?")
    message_id = _send(client, starter, shop)
    client.post(f"/api/sessions/{shop}/disconnect", headers=starter.headers)

    def events():
        return [json.loads(r.body)["event"] for r in receiver.received]

    wait_for(lambda: "session.disconnected" in events(), timeout=20, message="the disconnection")
    # The witness (wagate's format) hears every status: once it has `read`, so has the selfhosted endpoint.
    wait_for(
        lambda: ("message.status", "read") in {(b["event"], b["data"].get("status")) for b in witness_bodies()},
        timeout=20,
        message="the read status",
    )
    bodies = [json.loads(r.body) for r in receiver.received]
    for body in bodies:
        assert set(body) == {"event", "sessionId", "timestamp", "data"} and body["sessionId"] == shop
    by_event = {b["event"]: b["data"] for b in bodies}
    assert by_event["message.received"]["message"] == "Any news?"
    assert by_event["message.sent"]["messageId"] == message_id and by_event["message.sent"]["status"] == "sent"
    assert "message.status" not in events() and events().count("message.sent") == 1
    verify = readme_verify()
    assert all(verify(r.body, r.headers["X-Wagate-Signature"], created["secret"]) for r in receiver.received)
    assert {r.headers["X-Wagate-Event"] for r in receiver.received} == set(events())


@pytest.mark.parametrize("config_overrides", [{**LOCAL_RECEIVERS, "WEBHOOK_RETRY_DELAYS": [1, 1]}])
def test_a_redelivery_keeps_the_format_it_was_made_in(client, starter, receiver, shop):
    created = _create(client, starter, receiver.url(), format="aulm", events=["message.received"])
    receiver.answer(500, 500, 500)
    _inbound(client, starter, shop)
    [delivery] = wait_for(
        lambda: [d for d in _deliveries(client, starter, created["id"]) if d["status"] == "dead"], timeout=20
    )
    assert [_headers(r)["x-aulm-attempt"] for r in receiver.received] == ["1", "2", "3"]
    changed = client.patch(f"/api/webhooks/{created['id']}", json={"format": "standard"}, headers=starter.headers)
    assert changed.status_code == 200 and changed.get_json()["webhook"]["format"] == "standard"

    client.post(f"/api/webhooks/{created['id']}/deliveries/{delivery['id']}/redeliver", headers=starter.headers)
    wait_for(lambda: receiver.succeeded, message="the redelivery")
    redelivered = receiver.received[-1]
    headers = _headers(redelivered)
    assert (headers["x-aulm-attempt"], headers["x-aulm-delivery-id"]) == ("4", delivery["id"])
    assert redelivered.body == receiver.received[0].body and "webhook-signature" not in headers

    # Deliveries made from now on are in the new format.
    _inbound(client, starter, shop, text="Second")
    wait_for(lambda: len(receiver.succeeded) == 2, message="the new delivery")
    latest = receiver.received[-1]
    assert StandardWebhook(created["secret"]).verify(latest.body, latest.headers)["data"]["message"] == "Second"


def test_an_unknown_format_is_refused(client, starter, receiver):
    response = client.post("/api/webhooks", json={"url": receiver.url(), "format": "zapier"}, headers=starter.headers)
    body = response.get_json()
    assert response.status_code == 400 and "format" in json.dumps(body)
    assert client.get("/api/webhooks", headers=starter.headers).get_json()["webhooks"] == []
    created = _create(client, starter, receiver.url())
    assert created["format"] == "wagate"
    response = client.patch(f"/api/webhooks/{created['id']}", json={"format": 7}, headers=starter.headers)
    assert response.status_code == 400 and "format" in json.dumps(response.get_json())
    shown = client.get(f"/api/webhooks/{created['id']}", headers=starter.headers).get_json()["webhook"]
    assert shown["format"] == "wagate"


def test_the_dashboard_offers_the_formats(client, starter, receiver):
    user = DashboardUser(client, starter, landing="/webhooks")
    page = client.get("/webhooks").get_data(as_text=True)
    for name in ("wagate", "aulm", "selfhosted", "standard"):
        assert re.search(rf'<option (selected )?value="{name}"', page)
    assert '<option selected value="wagate"' in page
    data = {"url": receiver.url(), "events": ["message.received"], "session_id": "", "format": "standard"}
    assert user.htmx("POST", "/webhooks", data=data).status_code == 200
    [webhook] = client.get("/api/webhooks", headers=starter.headers).get_json()["webhooks"]
    assert webhook["format"] == "standard"
    assert "format <code>standard</code>" in user.htmx("GET", "/webhooks").get_data(as_text=True)
    data["format"] = "zapier"
    fragment = user.htmx("POST", "/webhooks", data=data).get_data(as_text=True)
    assert "Not a valid choice" in fragment
    assert len(client.get("/api/webhooks", headers=starter.headers).get_json()["webhooks"]) == 1
