"""One identity per contact (phone number and LID): on the simulator, with its
`sender_as_lid` fault, and as engines report it."""

from __future__ import annotations

from datetime import UTC, datetime

from engines import EngineEvent, EngineEventKind
from engines.simulator import simulated_lid
from extensions import socketio
from roles.engine_events import engine_event_apply
from tests.helpers import wait_for

CONTACT = "919845011111"


class Heard:
    """A Socket.IO client of the owner's, keeping every event it heard."""

    def __init__(self, app, client, account) -> None:
        self.socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
        self.packets: list[dict] = []

    def __call__(self, name: str) -> list[dict]:
        self.packets += self.socket.get_received()
        # A `message` event comes as Socket.IO's own unnamed message: its data alone.
        found = [packet["args"] for packet in self.packets if packet["name"] == name]
        return [args[0] if isinstance(args, list) else args for args in found]


def _fault(client, account, session_id: str, name: str) -> None:
    answer = client.put(f"/api/simulator/faults?sessionId={session_id}", json={name: True}, headers=account.headers)
    assert answer.status_code == 200, answer.get_json()


def _inbound(client, account, session_id: str, sender: str, text: str) -> None:
    answer = client.post(
        f"/api/simulator/sessions/{session_id}/inbound", json={"from": sender, "message": text}, headers=account.headers
    )
    assert answer.status_code == 202, answer.get_json()


def test_a_lid_sender_is_shown_and_answered_under_its_phone_number(app, client, account, shop, runtime):
    heard = Heard(app, client, account)
    _fault(client, account, shop, "sender_as_lid")
    _inbound(client, account, shop, CONTACT, "Hello from a LID")
    lid = simulated_lid(CONTACT)

    received = wait_for(lambda: heard("message"), message="the message event")[0]
    assert (received["from"], received["phone"], received["lid"]) == (CONTACT, CONTACT, lid)
    for name in (lid, lid.removesuffix("@lid"), CONTACT):  # the contact by either name
        found = client.get(f"/api/sessions/{shop}/contacts/{name}", headers=account.headers)
        assert found.status_code == 200, found.get_json()
        assert (found.get_json()["contact"]["phone"], found.get_json()["contact"]["lid"]) == (CONTACT, lid)

    answer = client.post(f"/api/sessions/{shop}/send", json={"to": lid, "message": "Hi!"}, headers=account.headers)
    assert answer.status_code in (200, 201), answer.get_json()
    outbox = wait_for(lambda: runtime.engine_host.engine.outbox(shop), message="the reply sent")
    assert [(entry["to"], entry["text"]) for entry in outbox] == [(CONTACT, "Hi!")]

    unknown = client.post(
        f"/api/sessions/{shop}/send", json={"to": "111122223333444@lid", "message": "?"}, headers=account.headers
    )
    assert (unknown.status_code, unknown.get_json()["code"]) == (400, "INVALID_NUMBER")
    missing = client.get(f"/api/sessions/{shop}/contacts/111122223333444@lid", headers=account.headers)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "CONTACT_NOT_FOUND")


def test_a_contact_seen_by_lid_then_by_number_is_one_contact(app, client, account, shop):
    lid, digits = "204151234567890@lid", "204151234567890"
    now = datetime.now(UTC)

    def message(wa_id: str, **identity) -> None:
        data = {"waId": wa_id, "text": wa_id, "timestamp": now, "type": "text", **identity}
        with app.app_context():
            engine_event_apply(EngineEvent(EngineEventKind.MESSAGE, shop, data))

    message("W1", sender=digits, lid=lid)  # WhatsApp gave no number yet
    saved = client.put(f"/api/sessions/{shop}/contacts/{lid}", json={"tags": ["lead"]}, headers=account.headers)
    assert saved.status_code in (200, 201), saved.get_json()
    client.put(f"/api/sessions/{shop}/contacts/{CONTACT}", json={"name": "Asha"}, headers=account.headers)
    message("W2", sender=CONTACT, phone=CONTACT, lid=lid)  # now both: one person

    listed = client.get(f"/api/sessions/{shop}/contacts", headers=account.headers).get_json()["contacts"]
    assert [(c["phone"], c["lid"], c["name"], c["tags"]) for c in listed] == [(CONTACT, lid, "Asha", ["lead"])]
    messages = client.get(f"/api/messages?sessionId={shop}&chat={CONTACT}", headers=account.headers).get_json()
    assert sorted(m["message"] for m in messages["messages"]) == ["W1", "W2"]
    message("W3", sender=digits, lid=lid)  # by LID alone again: filed under the number now known
    messages = client.get(f"/api/messages?sessionId={shop}&chat={CONTACT}", headers=account.headers).get_json()
    assert sorted(m["message"] for m in messages["messages"]) == ["W1", "W2", "W3"]
