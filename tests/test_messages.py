import pytest

from extensions import socketio
from tests.helpers import wait_for


def _send(client, account, session_id, to="919876543210", text="Hello from wagate!", **headers):
    return client.post(
        f"/api/sessions/{session_id}/send", json={"to": to, "message": text}, headers=account.headers | headers
    )


def _message(client, account, message_id) -> dict:
    return client.get(f"/api/messages/{message_id}", headers=account.headers).get_json()


def _outbox(runtime, session_id) -> list[dict]:
    return runtime.engine_host.engine.outbox(session_id)


def test_send_answers_the_documented_shape_once_the_engine_sent_it(client, account, shop, runtime):
    response = _send(client, account, shop, to="+91 98765-43210")
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert body["message"] == "Message sent successfully"
    assert body["status"] in {"sent", "delivered", "read"}
    assert body["to"] == "919876543210"
    assert [(m["to"], m["text"], m["id"]) for m in _outbox(runtime, shop)] == [
        ("919876543210", "Hello from wagate!", _message(client, account, body["messageId"])["waMessageId"])
    ]
    sessions = client.get("/api/sessions", headers=account.headers).get_json()["sessions"]
    assert sessions[0]["messagesSent"] == 1


def test_receipts_move_the_message_to_delivered_then_read_live(app, client, account, shop):
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    message_id = _send(client, account, shop).get_json()["messageId"]
    statuses: list[str] = []

    def seen_read() -> bool:
        statuses.extend(
            p["args"][0]["status"]
            for p in socket.get_received()
            if p["name"] == "message_status" and p["args"][0]["messageId"] == message_id
        )
        return "read" in statuses

    wait_for(seen_read, message="read receipt")
    assert statuses == ["sent", "delivered", "read"]
    message = _message(client, account, message_id)
    assert message["status"] == "read"
    assert message["sentAt"] <= message["deliveredAt"] <= message["readAt"]


def test_a_number_not_on_whatsapp_fails_clearly_and_is_listed_as_failed(client, account, shop):
    response = _send(client, account, shop, to="919876540000", text="Hello, this is a test message")
    assert response.status_code == 400
    body = response.get_json()
    assert (body["success"], body["code"], body["status"]) == (False, "NUMBER_NOT_ON_WHATSAPP", "failed")
    failed = client.get("/api/messages/failed", headers=account.headers).get_json()
    assert failed["success"] is True and failed["count"] == 1
    entry = failed["messages"][0]
    assert entry["recipient"] == "919876540000"
    assert entry["error"] == "Number not on WhatsApp"
    assert entry["message"] == "Hello, this is a test mess..."
    assert entry["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"to": "12345", "message": "hi"}, "INVALID_NUMBER"),
        ({"to": "9876543210", "message": "hi"}, "INVALID_NUMBER"),
        ({"to": "91987654321x", "message": "hi"}, "INVALID_NUMBER"),
        ({"message": "hi"}, "INVALID_NUMBER"),
        ({"to": "919876543210", "message": "   "}, "EMPTY_MESSAGE"),
        ({"to": "919876543210", "message": 42}, "EMPTY_MESSAGE"),
        ({"to": "919876543210", "message": "x" * 4097}, "MESSAGE_TOO_LONG"),
    ],
)
def test_bad_input_is_a_clear_400_and_nothing_is_sent(client, account, shop, runtime, body, code):
    response = client.post(f"/api/sessions/{shop}/send", json=body, headers=account.headers)
    assert response.status_code == 400
    assert response.get_json()["code"] == code
    assert client.get("/api/messages", headers=account.headers).get_json()["total"] == 0
    assert _outbox(runtime, shop) == []


def test_sending_needs_a_connected_session_of_ones_own(client, account, make_account, shop):
    client.post(f"/api/sessions/{shop}/disconnect", headers=account.headers)
    wait_for(
        lambda: (
            client.get(f"/api/sessions/{shop}/status", headers=account.headers).get_json()["status"] == "disconnected"
        )
    )
    response = _send(client, account, shop)
    assert (response.status_code, response.get_json()["code"]) == (400, "SESSION_NOT_CONNECTED")
    other = make_account()
    assert _send(client, other, shop).status_code == 404


def test_an_idempotency_key_returns_the_first_result_instead_of_sending_again(client, account, shop, runtime):
    first = _send(client, account, shop, **{"Idempotency-Key": "order-42"}).get_json()
    again = _send(client, account, shop, **{"Idempotency-Key": "order-42"}).get_json()
    assert again["messageId"] == first["messageId"]
    assert len(_outbox(runtime, shop)) == 1
    changed = _send(client, account, shop, text="another text", **{"Idempotency-Key": "order-42"})
    assert changed.status_code == 409
    assert changed.get_json()["code"] == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("config_overrides", [{"SEND_WAIT_SECONDS": 0.3}])
def test_a_slow_engine_answers_202_and_the_send_still_completes_once(client, account, shop, runtime):
    faults = f"/api/simulator/faults?sessionId={shop}"
    client.put(faults, json={"timeout": True}, headers=account.headers)
    response = _send(client, account, shop)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["success"], body["status"]) == (True, "queued")
    client.delete(faults, headers=account.headers)
    message = wait_for(
        lambda: (m := _message(client, account, body["messageId"]))["status"] in {"sent", "delivered", "read"} and m,
        message="the retried send",
    )
    assert message["sentAt"]
    assert len(_outbox(runtime, shop)) == 1


def test_an_upstream_error_that_persists_fails_after_the_retries(client, account, shop, runtime):
    client.put(f"/api/simulator/faults?sessionId={shop}", json={"upstream_error": True}, headers=account.headers)
    message_id = _send(client, account, shop).get_json()["messageId"]
    message = wait_for(lambda: (m := _message(client, account, message_id))["status"] == "failed" and m)
    assert message["errorCode"] == "UPSTREAM_ERROR"
    assert _outbox(runtime, shop) == []


def test_inbound_messages_are_stored_counted_and_pushed(app, client, account, shop, runner):
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    response = client.post(
        f"/api/simulator/sessions/{shop}/inbound",
        json={"from": "+44 7911 123456", "message": "Is the shop open today?"},
        headers=account.headers,
    )
    assert response.status_code == 202
    received: list[dict] = []

    def got_message() -> bool:
        # The test client unwraps the payload of an event named "message" (Socket.IO's send()).
        received.extend(p["args"] for p in socket.get_received() if p["name"] == "message")
        return bool(received)

    wait_for(got_message, message="inbound message event")
    assert received[0]["from"] == "447911123456"
    assert received[0]["message"] == "Is the shop open today?"
    assert received[0]["sessionId"] == shop
    result = runner.invoke(args=["simulator", "inbound", shop, "447911123456", "Hello again"])
    assert result.exit_code == 0, result.output
    # The command checks what it sends as the API's inbound route does: a blank text is refused.
    blank = runner.invoke(args=["simulator", "inbound", shop, "447911123456", "   "])
    assert blank.exit_code != 0 and "'message' is required" in blank.output
    wait_for(
        lambda: client.get("/api/sessions", headers=account.headers).get_json()["sessions"][0]["messagesReceived"] == 2
    )
    inbound = client.get("/api/messages?direction=inbound", headers=account.headers).get_json()
    assert [m["message"] for m in inbound["messages"]] == ["Hello again", "Is the shop open today?"]
    assert inbound["messages"][0]["from"] == "447911123456"


def test_stats_count_the_week_with_zeros_for_quiet_days(client, account, shop):
    for to in ("919876543210", "919876543211", "919876540000"):
        _send(client, account, shop, to=to)

    def stats():
        body = client.get("/api/messages/stats", headers=account.headers).get_json()
        totals = body["totals"]
        return (totals["sent"], totals["failed"], totals["read"]) == (2, 1, 2) and body

    body = wait_for(stats, message="aggregated stats")
    assert body["success"] is True
    assert body["totals"]["total"] == 3 and body["totals"]["delivered"] == 2
    chart = body["chart"]
    assert len(chart["labels"]) == 7 and all(len(chart[key]) == 7 for key in ("sent", "delivered", "read", "failed"))
    assert chart["sent"] == [0, 0, 0, 0, 0, 0, 2]
    assert chart["failed"] == [0, 0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize("config_overrides", [{"API_RATE_LIMIT": ""}])
def test_waiting_for_a_scan_by_polling_the_status_leaves_the_plans_requests_alone(client, runtime, account):
    session_id = client.post("/api/sessions", json={"name": "Shop"}, headers=account.headers).get_json()["sessionId"]
    # The WAMessenger clients' waitForConnection: 60 polls, 2 s apart (here back to back),
    # counted against a budget of polls (a minute's worth), not the plan's 100 requests.
    for left in range(59, -1, -1):
        poll = client.get(f"/api/sessions/{session_id}/status", headers=account.headers)
        assert poll.status_code == 200
        assert (poll.headers["X-RateLimit-Limit"], poll.headers["X-RateLimit-Remaining"]) == ("60", str(left))
    # That budget holds all the same: one poll a second, on average.
    refused = client.get(f"/api/sessions/{session_id}/status", headers=account.headers)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


@pytest.mark.parametrize("config_overrides", [{"API_RATE_LIMIT": ""}])
def test_the_general_api_limit_is_the_plans(client, account):
    for _ in range(100):
        assert client.get("/api/sessions", headers=account.headers).status_code == 200
    limited = client.get("/api/sessions", headers=account.headers)
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Limit"] == "100"
    assert limited.get_json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("to", "stored"),
    [("+237612345678", "237612345678"), ("+966501234567", "966501234567"), ("14155551234", "14155551234")],
)
def test_the_documents_example_numbers_are_recipients(client, account, shop, runtime, to, stored):
    """Possible numbers go, whatever a country's allocation tables say of them today."""
    response = _send(client, account, shop, to=to)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["to"] == stored
    assert [m["to"] for m in _outbox(runtime, shop)] == [stored]


@pytest.mark.parametrize(
    ("to", "why"),
    [("+919876543", "too short"), ("+1415555123456", "too long"), ("+99912345678", "not a phone number with a valid")],
)
def test_an_impossible_number_says_what_is_wrong(client, account, shop, to, why):
    response = _send(client, account, shop, to=to)
    assert response.status_code == 400
    assert why in response.get_json()["message"]


def test_a_contact_cards_number_is_its_content_not_a_recipient(client, account, shop, runtime):
    body = {"to": "919876543210", "contact": {"fullName": "Help desk", "phoneNumber": "+1 (800) 555-0100"}}
    response = client.post(f"/api/sessions/{shop}/send", json=body, headers=account.headers)
    assert response.status_code == 200, response.get_json()
    [sent] = _outbox(runtime, shop)
    assert sent["contact"]["phone"] == "18005550100"


@pytest.mark.parametrize("config_overrides", [{"PACE_MIN_GAP_SECONDS": 30.0}])
def test_a_number_not_on_whatsapp_is_refused_at_once_however_the_pace_holds_sends(client, account, shop, runtime):
    """The session's pace holds the second send back, yet the answer for an unknown number is
    the same every time: known from the (cached) number check, not from the send."""
    assert _send(client, account, shop).status_code == 200  # the first goes at once
    for _ in range(2):
        response = _send(client, account, shop, to="919876540000")
        assert response.status_code == 400, response.get_json()
        body = response.get_json()
        assert (body["success"], body["code"], body["error"]) == (
            False,
            "NUMBER_NOT_ON_WHATSAPP",
            "Number not on WhatsApp",
        )
        assert (body["quotaRefunded"], body["retryable"]) == (False, False)
        assert _message(client, account, body["messageId"])["status"] == "failed"
    assert [m["to"] for m in _outbox(runtime, shop)] == ["919876543210"]
    legacy = client.post(
        "/api/whatsapp/send", json={"number": "919876540000", "message": "Hi"}, headers=account.headers
    )
    assert (legacy.status_code, legacy.get_json()["error"]) == (400, "Number not on WhatsApp")
