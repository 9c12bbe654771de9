"""A session's Server-Sent Events stream, read over HTTP from the embedded server by a plain client."""

from __future__ import annotations

import json
import queue
import threading
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import decode_qr
from tests.live import embedded_server

pytestmark = pytest.mark.live_server


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("sse"), STREAM_HEARTBEAT_SECONDS="0.5") as url:
        yield url


class SseClient:
    """Reads `id:`/`event:`/`data:` blocks from a streaming response on a thread."""

    def __init__(self, url: str, headers: dict) -> None:
        self.response = requests.get(url, headers=headers, stream=True, timeout=10)
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        block: dict = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line == "":
                    if "event" in block:
                        self.events.put(block)
                    block = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    block[name] = value
        except Exception:  # noqa: BLE001 - the response was closed under the reader: the stream is over
            pass

    def next(self, event: str, timeout: float = 10.0) -> dict:
        """The next event called `event` (others before it are skipped)."""
        while True:
            block = self.events.get(timeout=timeout)
            if block["event"] == event:
                return {"id": block["id"], **json.loads(block["data"])}

    def close(self) -> None:
        self.response.close()


def _account(base_url: str, email: str) -> dict:
    body = requests.post(f"{base_url}/api/register", json={"email": email, "password": "correct horse"}).json()
    return {"Authorization": f"Bearer {body['token']}"}


def _session(base_url: str, headers: dict) -> str:
    return requests.post(f"{base_url}/api/sessions", json={"name": "Shop"}, headers=headers).json()["sessionId"]


def _pair(base_url: str, headers: dict, session_id: str) -> None:
    qr = requests.get(f"{base_url}/api/sessions/{session_id}/qr", headers=headers).json()
    path = urlsplit(decode_qr(qr["qrCode"])).path
    assert requests.post(f"{base_url}{path}", json={"phone": "919812345678"}).status_code == 200


def test_the_stream_carries_pairing_sending_and_inbound_events(base_url):
    headers = _account(base_url, "sse-owner@example.com")
    session_id = _session(base_url, headers)
    stream = SseClient(f"{base_url}/api/sessions/{session_id}/stream", headers)
    assert stream.response.status_code == 200
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    try:
        _pair(base_url, headers, session_id)
        connected = stream.next("connected")
        assert (connected["sessionId"], connected["phone"]) == (session_id, "919812345678")

        sent = requests.post(
            f"{base_url}/api/sessions/{session_id}/send", json={"to": "919876543210", "message": "Hi"}, headers=headers
        ).json()
        statuses = [stream.next("message_status") for _ in range(3)]
        assert {s["messageId"] for s in statuses} == {sent["messageId"]}
        assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]

        requests.post(
            f"{base_url}/api/simulator/sessions/{session_id}/inbound",
            json={"from": "919811112222", "message": "Do you deliver?"},
            headers=headers,
        )
        inbound = stream.next("message")
        assert (inbound["from"], inbound["message"]) == ("919811112222", "Do you deliver?")
    finally:
        stream.close()


def test_a_client_resuming_with_last_event_id_gets_what_it_missed(base_url):
    headers = _account(base_url, "sse-resume@example.com")
    session_id = _session(base_url, headers)
    _pair(base_url, headers, session_id)
    stream = SseClient(f"{base_url}/api/sessions/{session_id}/stream", headers)
    send = f"{base_url}/api/sessions/{session_id}/send"
    first = requests.post(send, json={"to": "919876543219", "message": "one"}, headers=headers).json()["messageId"]
    seen = stream.next("message_status")
    assert (seen["messageId"], seen["status"]) == (first, "sent")
    stream.close()

    # While the client is away: the first message's receipt, and a second message.
    second = requests.post(send, json={"to": "919876543219", "message": "two"}, headers=headers).json()["messageId"]
    resumed = SseClient(f"{base_url}/api/sessions/{session_id}/stream", headers | {"Last-Event-ID": seen["id"]})
    try:
        missed = [resumed.next("message_status") for _ in range(3)]
        assert sorted((m["messageId"], m["status"]) for m in missed) == sorted(
            [(first, "delivered"), (second, "sent"), (second, "delivered")]
        )
        assert all(m["id"] > seen["id"] for m in missed)
        # Its ids are the event log's cursors, in the log's order.
        logged = requests.get(
            f"{base_url}/api/events",
            params={"after": seen["id"], "sessionId": session_id, "types": "message_status"},
            headers=headers,
        ).json()["events"]
        assert [m["id"] for m in missed] == [event["id"] for event in logged[:3]]
        assert [m["eventId"] for m in missed] == [m["id"] for m in missed]
    finally:
        resumed.close()


def test_only_the_owner_can_open_a_sessions_stream(base_url):
    owner = _account(base_url, "sse-a@example.com")
    session_id = _session(base_url, owner)
    stranger = _account(base_url, "sse-b@example.com")
    url = f"{base_url}/api/sessions/{session_id}/stream"
    assert requests.get(url, headers=stranger, timeout=5).status_code == 404
    assert requests.get(url, timeout=5).status_code == 401
    bad = requests.get(url, headers=owner | {"Last-Event-ID": "yesterday"}, timeout=5)
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_EVENT_ID")


def test_inbound_kinds_votes_and_presence_are_streamed(base_url):
    headers = _account(base_url, "sse-kinds@example.com")
    session_id = _session(base_url, headers)
    _pair(base_url, headers, session_id)
    stream = SseClient(f"{base_url}/api/sessions/{session_id}/stream", headers)
    inbound = f"{base_url}/api/simulator/sessions/{session_id}/inbound"
    contact = "919811112222"
    try:
        requests.post(
            inbound, json={"from": contact, "location": {"latitude": 19.07, "longitude": 72.87}}, headers=headers
        )
        where = stream.next("message")
        assert (where["type"], where["content"]["location"]["latitude"]) == ("location", 19.07)

        poll = {"question": "Pickup or delivery?", "options": ["Pickup", "Delivery"]}
        sent = requests.post(
            f"{base_url}/api/sessions/{session_id}/send", json={"to": contact, "poll": poll}, headers=headers
        ).json()
        requests.post(
            inbound,
            json={"from": contact, "vote": {"messageId": sent["messageId"], "options": ["Pickup"]}},
            headers=headers,
        )
        vote = stream.next("poll_vote")
        assert (vote["messageId"], vote["options"]) == (sent["messageId"], ["Pickup"])

        requests.post(
            f"{base_url}/api/simulator/sessions/{session_id}/presence",
            json={"from": contact, "state": "typing"},
            headers=headers,
        )
        typing = stream.next("presence_update")
        assert (typing["from"], typing["state"]) == (contact, "typing")
    finally:
        stream.close()
