"""GET /api/messages: filters (chat, direction, status, type, time) and cursor paging."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import pair_session, wait_for


@pytest.fixture
def history(client, runtime, account):
    """A session with four sent messages (one a location) and one received."""
    session_id = pair_session(client, account)
    send = f"/api/sessions/{session_id}/send"
    for to, text in [("919876543211", "one"), ("919876543212", "two"), ("919876543211", "three")]:
        assert client.post(send, json={"to": to, "message": text}, headers=account.headers).status_code == 200
    located = {"to": "919876543212", "location": {"latitude": 12.97, "longitude": 77.59, "name": "Shop"}}
    assert client.post(send, json=located, headers=account.headers).status_code == 200
    client.post(
        f"/api/simulator/sessions/{session_id}/inbound",
        json={"from": "919876543211", "message": "thanks"},
        headers=account.headers,
    )
    wait_for(lambda: _log(client, account, direction="inbound")["total"] == 1, message="the inbound message")
    return session_id


def _log(client, account, **params) -> dict:
    response = client.get("/api/messages", query_string=params, headers=account.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _texts(page: dict) -> list[str]:
    return [m["message"] for m in page["messages"]]


def test_filters(client, account, history):
    assert _texts(_log(client, account, chat="+91 98765 43211")) == ["thanks", "three", "one"]
    assert _texts(_log(client, account, chat="919876543211", direction="outbound")) == ["three", "one"]
    assert _texts(_log(client, account, type="location")) == ["📍 Shop"]
    assert _log(client, account, type="location")["messages"][0]["content"]["location"]["name"] == "Shop"
    assert _log(client, account, status="received")["total"] == 1
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert _log(client, account, since=future)["total"] == 0
    assert _log(client, account, until=future, sessionId=history)["total"] == 5


def test_cursor_paging_walks_the_whole_log_once_even_as_messages_arrive(client, account, history):
    seen, cursor = [], None
    while True:
        page = _log(client, account, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += _texts(page)
        if len(seen) == 2:  # a message arriving mid-walk lands before the cursor, not in the pages after
            client.post(
                f"/api/sessions/{history}/send", json={"to": "919876543213", "message": "late"}, headers=account.headers
            )
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ["thanks", "📍 Shop", "three", "two", "one"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"since": "yesterday"}, "INVALID_FIELD"),
        ({"type": "hologram"}, "INVALID_FIELD"),
        ({"status": "lost"}, "INVALID_FIELD"),
        ({"chat": "abc"}, "INVALID_NUMBER"),
        ({"cursor": "00000000-0000-0000-0000-000000000000"}, "INVALID_CURSOR"),
    ],
)
def test_bad_filters_get_clear_errors(client, account, history, params, code):
    response = client.get("/api/messages", query_string=params, headers=account.headers)
    assert (response.status_code, response.get_json()["code"]) == (400, code)
