"""Presence both ways (the session typing in a chat; contacts online and typing, pushed live
and to webhooks), poll votes counted on their poll, and Wamux's explicit media routes."""

from __future__ import annotations

import json

import pytest

from extensions import socketio
from tests.fixtures import OGG, PNG, data_url
from tests.helpers import LOCAL_RECEIVERS, wait_for

CONTACT = "919811112222"
OTHER = "919833334444"


@pytest.fixture
def config_overrides() -> dict:
    return LOCAL_RECEIVERS


@pytest.fixture
def shop_owner(starter):
    return starter


def _events(socket, name: str) -> list[dict]:
    return [packet["args"][0] for packet in socket.get_received() if packet["name"] == name]


def test_the_session_shows_typing_and_recording_in_a_chat(client, starter, shop, runtime):
    url = f"/api/sessions/{shop}/presence"
    for state in ("typing", "recording", "paused"):
        answer = client.post(url, json={"to": f"+{CONTACT}", "state": state}, headers=starter.headers)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"success": True, "sessionId": shop, "state": state, "to": CONTACT}
    assert client.post(url, json={"state": "available"}, headers=starter.headers).status_code == 200
    shown = runtime.engine_host.engine.presence_log(shop)
    assert [(entry["state"], entry.get("chat")) for entry in shown] == [
        ("typing", CONTACT),
        ("recording", CONTACT),
        ("paused", CONTACT),
        ("available", None),
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"to": CONTACT, "state": "dancing"}, 400, "INVALID_STATE"),
        ({"state": "typing"}, 400, "INVALID_NUMBER"),
        ({"to": CONTACT, "state": "available"}, 400, "INVALID_FIELD"),
        ({"to": "919800000000", "state": "typing"}, 400, "NUMBER_NOT_ON_WHATSAPP"),
        ({"to": "120363000000000001@g.us", "state": "typing"}, 404, "GROUP_NOT_FOUND"),
    ],
)
def test_bad_presence_is_refused(client, starter, shop, body, status, code):
    answer = client.post(f"/api/sessions/{shop}/presence", json=body, headers=starter.headers)
    assert (answer.status_code, answer.get_json()["code"]) == (status, code)


def test_presence_needs_a_connected_session_of_ones_own(client, starter, shop, make_account):
    stranger = make_account()
    idle = client.post("/api/sessions", json={"name": "Idle"}, headers=stranger.headers).get_json()["sessionId"]
    answer = client.post(f"/api/sessions/{idle}/presence", json={"state": "available"}, headers=stranger.headers)
    assert (answer.status_code, answer.get_json()["code"]) == (400, "SESSION_NOT_CONNECTED")
    answer = client.post(f"/api/sessions/{shop}/presence", json={"state": "available"}, headers=stranger.headers)
    assert answer.status_code == 404
    answer = client.post(f"/api/sessions/{shop}/presence/subscribe", json={"phone": CONTACT}, headers=stranger.headers)
    assert answer.status_code == 404
    answer = client.post(
        f"/api/simulator/sessions/{shop}/presence", json={"from": CONTACT, "state": "online"}, headers=stranger.headers
    )
    assert answer.status_code == 404


def test_contacts_presence_reaches_socketio_and_webhooks(app, client, starter, shop, receiver):
    hook = client.post(
        "/api/webhooks", json={"url": receiver.url(), "events": ["presence.update"]}, headers=starter.headers
    )
    assert hook.status_code == 201, hook.get_json()
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": starter.token})

    followed = client.post(f"/api/sessions/{shop}/presence/subscribe", json={"phone": CONTACT}, headers=starter.headers)
    assert followed.get_json() == {"success": True, "sessionId": shop, "phone": CONTACT}
    simulate = f"/api/simulator/sessions/{shop}/presence"
    group = "120363000000000001@g.us"
    for body in ({"state": "typing"}, {"state": "recording", "chat": group}, {"state": "offline"}):
        assert client.post(simulate, json={"from": CONTACT, **body}, headers=starter.headers).status_code == 202

    seen: list[dict] = []
    wait_for(lambda: seen.extend(_events(socket, "presence_update")) or len(seen) >= 4, message="4 presence events")
    assert [(event["from"], event["state"], event.get("chat")) for event in seen] == [
        (CONTACT, "online", None),
        (CONTACT, "typing", None),
        (CONTACT, "recording", group),
        (CONTACT, "offline", None),
    ]
    assert all(event["sessionId"] == shop for event in seen) and "lastSeen" in seen[-1]

    wait_for(lambda: len(receiver.succeeded) >= 4, message="4 webhook deliveries")
    bodies = [json.loads(received.body) for received in receiver.succeeded]
    assert {body["event"] for body in bodies} == {"presence.update"}
    assert sorted(body["data"]["state"] for body in bodies) == ["offline", "online", "recording", "typing"]


def test_a_simulated_contacts_presence_is_checked(client, starter, shop):
    simulate = f"/api/simulator/sessions/{shop}/presence"
    answer = client.post(simulate, json={"from": CONTACT, "state": "asleep"}, headers=starter.headers)
    assert (answer.status_code, answer.get_json()["code"]) == (400, "INVALID_STATE")
    answer = client.post(simulate, json={"from": CONTACT, "state": "typing", "chat": "x"}, headers=starter.headers)
    assert (answer.status_code, answer.get_json()["code"]) == (400, "INVALID_GROUP_ID")


def _poll(client, account, session_id, *, multiple: bool) -> str:
    poll = {"question": "Which colour?", "options": ["Red", "Green", "Blue"], "multipleAnswers": multiple}
    sent = client.post(f"/api/sessions/{session_id}/send", json={"to": CONTACT, "poll": poll}, headers=account.headers)
    assert sent.status_code == 200, sent.get_json()
    return sent.get_json()["messageId"]


def _vote(client, account, session_id, voter: str, message_id: str, options: list[str]):
    return client.post(
        f"/api/simulator/sessions/{session_id}/inbound",
        json={"from": voter, "vote": {"messageId": message_id, "options": options}},
        headers=account.headers,
    )


def test_poll_votes_are_counted_on_their_poll_and_pushed_live(app, client, starter, shop):
    poll_id = _poll(client, starter, shop, multiple=True)
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": starter.token})

    def votes() -> dict:
        message = client.get(f"/api/messages/{poll_id}", headers=starter.headers).get_json()
        return message["content"].get("votes")

    assert _vote(client, starter, shop, CONTACT, poll_id, ["Red", "Blue"]).status_code == 202
    assert wait_for(votes, message="the first vote") == {CONTACT: ["Red", "Blue"]}
    _vote(client, starter, shop, OTHER, poll_id, ["Blue"])
    wait_for(lambda: OTHER in votes(), message="the second vote")
    _vote(client, starter, shop, CONTACT, poll_id, ["Green"])  # a changed mind replaces the vote
    assert wait_for(lambda: votes()[CONTACT] == ["Green"] and votes(), message="the changed vote") == {
        CONTACT: ["Green"],
        OTHER: ["Blue"],
    }
    _vote(client, starter, shop, OTHER, poll_id, [])  # no options: the vote is taken back
    wait_for(lambda: votes() == {CONTACT: ["Green"]}, message="the vote taken back")

    pushed: list[dict] = []  # the event follows the stored vote: wait for the last one too
    wait_for(lambda: pushed.extend(_events(socket, "poll_vote")) or len(pushed) >= 4, message="4 poll_vote events")
    assert [(event["from"], event["options"]) for event in pushed] == [
        (CONTACT, ["Red", "Blue"]),
        (OTHER, ["Blue"]),
        (CONTACT, ["Green"]),
        (OTHER, []),
    ]
    assert pushed[2]["results"] == [
        {"option": "Red", "votes": 0},
        {"option": "Green", "votes": 1},
        {"option": "Blue", "votes": 1},
    ]
    inbound = client.get("/api/messages", query_string={"direction": "inbound"}, headers=starter.headers)
    assert inbound.get_json()["total"] == 0  # a vote is not a message of its own


def test_bad_votes_are_refused(client, starter, shop):
    single = _poll(client, starter, shop, multiple=False)
    text = client.post(f"/api/sessions/{shop}/send", json={"to": CONTACT, "message": "hi"}, headers=starter.headers)
    for message_id, options, status, code in [
        (text.get_json()["messageId"], ["Red"], 404, "POLL_NOT_FOUND"),
        ("nope", ["Red"], 404, "POLL_NOT_FOUND"),
        (single, ["Purple"], 400, "INVALID_FIELD"),
        (single, ["Red", "Blue"], 400, "INVALID_FIELD"),
    ]:
        answer = _vote(client, starter, shop, CONTACT, message_id, options)
        assert (answer.status_code, answer.get_json()["code"]) == (status, code), (message_id, options)


def test_wamux_media_and_audio_routes_send_those_kinds(client, starter, shop, runtime):
    media = client.post(
        f"/api/sessions/{shop}/send/media",
        json={"to": CONTACT, "mediaUrl": data_url(PNG, "image/png"), "mediaType": "image", "caption": "New stock"},
        headers=starter.headers,
    )
    assert media.status_code == 200, media.get_json()
    audio = client.post(
        f"/api/sessions/{shop}/send/audio",
        json={"to": CONTACT, "audioUrl": data_url(OGG, "audio/ogg"), "ptt": True},
        headers=starter.headers,
    )
    assert audio.status_code == 200, audio.get_json()
    outbox = runtime.engine_host.engine.outbox(shop)
    assert [(entry["kind"], entry["text"]) for entry in outbox] == [("image", "New stock"), ("ptt", "")]
    stored = client.get(f"/api/messages/{audio.get_json()['messageId']}", headers=starter.headers).get_json()
    assert stored["type"] == "ptt"


@pytest.mark.parametrize(
    ("route", "body", "code"),
    [
        ("media", {"mediaUrl": "data:image/png;base64,AAAA", "mediaType": "hologram"}, "INVALID_FIELD"),
        ("media", {"mediaType": "image"}, "MISSING_FIELD"),
        ("audio", {"ptt": True}, "MISSING_FIELD"),
        ("audio", {"audioUrl": "data:audio/ogg;base64,AAAA", "ptt": "yes"}, "INVALID_FIELD"),
    ],
)
def test_wamux_routes_refuse_bad_bodies(client, starter, shop, route, body, code):
    answer = client.post(f"/api/sessions/{shop}/send/{route}", json={"to": CONTACT, **body}, headers=starter.headers)
    assert (answer.status_code, answer.get_json()["code"]) == (400, code)
