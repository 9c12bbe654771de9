"""One identity per contact (phone number and LID) and a chat's history backfilled, with
the chats list that finds them: on the simulator, with its `sender_as_lid` and
`history_on_request` faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engines import EngineEvent, EngineEventKind
from engines.simulator import HISTORY_BATCH, simulated_lid
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
    assert client.get(f"/api/sessions/{shop}/chats", headers=account.headers).get_json()["total"] == 1


def test_a_chats_history_is_backfilled_with_progress_events(app, client, account, shop, make_account):
    heard = Heard(app, client, account)
    _fault(client, account, shop, "history_on_request")
    _inbound(client, account, shop, CONTACT, "Is my order ready?")
    wait_for(lambda: heard("message"), message="the live message")
    url = f"/api/sessions/{shop}/chats/{CONTACT}/history"

    asked = client.post(url, json={"count": 120.0}, headers=account.headers)  # a whole number, as JSON allows
    assert asked.status_code == 202, asked.get_json()
    request_id = asked.get_json()["requestId"]
    done = wait_for(lambda: heard("history_completed"), message="the backfill's end")[0]
    assert (done["requestId"], done["chat"], done["received"], done["historyTotal"]) == (request_id, CONTACT, 120, 120)
    progress = heard("history_progress")
    assert [(p["stored"], p["received"], p["requested"]) for p in progress] == [
        (HISTORY_BATCH, 50, 120),
        (HISTORY_BATCH, 100, 120),
        (20, 120, 120),
    ]
    assert len(heard("message")) == 1  # history makes no message events unless asked

    chats = client.get(f"/api/sessions/{shop}/chats", headers=account.headers).get_json()
    assert chats["total"] == 1
    [chat] = chats["chats"]
    assert (chat["chat"], chat["unreadCount"], chat["lastMessage"]["message"]) == (CONTACT, 1, "Is my order ready?")
    log = client.get(f"/api/messages?sessionId={shop}&chat={CONTACT}&limit=200", headers=account.headers).get_json()
    history = [m for m in log["messages"] if m.get("history")]
    assert len(history) == 120 and {m["direction"] for m in history} == {"inbound", "outbound"}

    again = client.post(url, json={"count": 2, "notify": True}, headers=account.headers)  # further back, told
    assert again.status_code == 202
    wait_for(lambda: len(heard("history_completed")) == 2, message="the second backfill")
    told = heard("message")[1:]  # the contact's one of the two (the phone's own are not "received")
    assert [(event["from"], event["history"]) for event in told] == [(CONTACT, True)]

    since = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    stranger = make_account()
    assert client.post(url, json={"since": since}, headers=stranger.headers).status_code == 404
    assert client.get(f"/api/sessions/{shop}/chats", headers=stranger.headers).status_code == 404


def test_bad_backfills_are_refused(client, account, shop):
    url = f"/api/sessions/{shop}/chats/{CONTACT}/history"
    bad = [
        ({"count": 0}, "INVALID_FIELD"),
        ({"count": "ten"}, "INVALID_FIELD"),
        ({}, "INVALID_FIELD"),
        ({"count": 5, "since": "2026-01-01T00:00:00Z"}, "INVALID_FIELD"),
        ({"since": "yesterday"}, "INVALID_FIELD"),
        ({"count": 5, "colour": "blue"}, "INVALID_FIELD"),
    ]
    for body, code in bad:
        answer = client.post(url, json=body, headers=account.headers)
        assert (answer.status_code, answer.get_json()["code"]) == (400, code), body
    nonsense = client.post(f"/api/sessions/{shop}/chats/not-a-chat/history", json={"count": 5}, headers=account.headers)
    assert (nonsense.status_code, nonsense.get_json()["code"]) == (400, "INVALID_NUMBER")
    elsewhere = f"/api/sessions/{shop}/chats/120363000000000001@g.us/history"
    not_in = client.post(elsewhere, json={"count": 5}, headers=account.headers)
    assert (not_in.status_code, not_in.get_json()["code"]) == (404, "GROUP_NOT_FOUND")
    group_log = client.get(f"/api/messages?chat=120363000000000001@g.us&sessionId={shop}", headers=account.headers)
    assert (group_log.status_code, group_log.get_json()["total"]) == (200, 0)  # a group's chat is one to filter by
