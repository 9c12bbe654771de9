import re
from urllib.parse import urlsplit

import pytest

from tests.helpers import decode_qr, pair_session, wait_for


def _status(client, account, session_id) -> dict:
    return client.get(f"/api/sessions/{session_id}/status", headers=account.headers).get_json()


def _create(client, account, **body) -> dict:
    response = client.post("/api/sessions", json=body or None, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _scan(client, qr_code: str, **body):
    return client.post(urlsplit(decode_qr(qr_code)).path, json=body or None)


def test_create_returns_the_documented_shape_and_a_qr_follows(client, runtime, account):
    created = _create(client, account, name="Support Bot", description="Customer support automation")
    assert created == {
        "success": True,
        "sessionId": created["sessionId"],
        "name": "Support Bot",
        "status": "connecting",
        "message": "Session created. Generating QR code...",
    }
    # Asked once, right after creating (as the doc's curl script does), the QR is there.
    qr = client.get(f"/api/sessions/{created['sessionId']}/qr", headers=account.headers).get_json()
    assert qr["status"] == "pending"
    assert qr["qrCode"].startswith("data:image/png;base64,")
    assert qr["expiresAt"].endswith("Z")
    assert decode_qr(qr["qrCode"]).startswith(f"http://127.0.0.1:5000/sim/pair/{created['sessionId']}/")


def test_the_qr_answer_gives_the_link_the_simulators_qr_encodes_so_curl_can_pair(client, runtime, account):
    session_id = _create(client, account, name="Shop")["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    assert qr["pairUrl"] == decode_qr(qr["qrCode"])
    assert client.post(urlsplit(qr["pairUrl"]).path).get_json()["status"] == "connected"
    after = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    assert (after["qrCode"], after["pairUrl"]) == (None, None)


def test_scanning_the_qr_connects_the_session_with_the_phone(client, account, shop):
    status = _status(client, account, shop)
    assert status["status"] == "connected"
    assert status["phone"] == "919876543210"
    assert status["hasQR"] is False
    listed = client.get("/api/sessions", headers=account.headers).get_json()
    assert listed["total"] == 1
    session = listed["sessions"][0]
    assert set(session) == {
        "sessionId",
        "name",
        "description",
        "phone",
        "status",
        "hasQR",
        "messagesSent",
        "messagesReceived",
        "createdAt",
    }
    assert (session["status"], session["phone"], session["messagesSent"]) == ("connected", "919876543210", 0)
    detail = client.get(f"/api/sessions/{shop}", headers=account.headers).get_json()
    assert detail["connectedAt"].endswith("Z")
    connected_qr = client.get(f"/api/sessions/{shop}/qr", headers=account.headers).get_json()
    assert connected_qr["qrCode"] is None
    assert connected_qr["status"] == "connected"


def test_a_scan_without_a_phone_pairs_with_the_simulated_number(client, runtime, account):
    session_id = _create(client, account)["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    body = _scan(client, qr["qrCode"]).get_json()
    assert body["status"] == "connected"
    assert body["phone"].startswith("1555") and len(body["phone"]) == 11


def test_an_old_or_forged_qr_url_does_not_pair(client, runtime, account):
    session_id = _create(client, account)["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    forged = client.post(f"/sim/pair/{session_id}/not-the-token")
    assert forged.status_code == 409
    assert forged.get_json()["code"] == "QR_SUPERSEDED"
    unknown = client.post("/sim/pair/no-such-session/token")
    assert unknown.status_code == 404
    assert _scan(client, qr["qrCode"], phone="12ab").get_json()["code"] == "INVALID_PHONE"
    assert _status(client, account, session_id)["status"] == "pending"


@pytest.mark.parametrize("config_overrides", [{"QR_REFRESH_SECONDS": 0.4, "QR_MAX_REFRESHES": 2}])
def test_the_qr_refreshes_a_bounded_number_of_times_then_gives_up(client, runtime, account):
    session_id = _create(client, account)["sessionId"]
    first = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()["qrCode"]
    second = wait_for(
        lambda: (
            (qr := client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()["qrCode"])
            and qr != first
            and qr
        ),
        message="a refreshed QR",
    )
    assert decode_qr(second) != decode_qr(first)
    # The first code no longer pairs once it has been replaced.
    assert _scan(client, first).status_code == 409
    final = wait_for(
        lambda: (s := _status(client, account, session_id))["status"] == "disconnected" and s, message="give-up"
    )
    assert "not scanned in time" in final["reason"]
    assert client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()["qrCode"] is None
    # Connecting again starts a new round of QR codes.
    client.post(f"/api/sessions/{session_id}/connect", headers=account.headers)
    again = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    assert again["status"] == "pending" and again["qrCode"]


def test_plan_limits_the_number_of_sessions(client, runtime, make_account):
    free = make_account()
    _create(client, free)
    blocked = client.post("/api/sessions", json={}, headers=free.headers)
    assert blocked.status_code == 403
    assert blocked.get_json()["code"] == "SESSION_LIMIT_REACHED"
    assert "Free plan allows 1 session" in blocked.get_json()["message"]
    growth = make_account(plan="growth")
    for _ in range(3):
        _create(client, growth)
    assert client.post("/api/sessions", json={}, headers=growth.headers).status_code == 403


def test_patch_renames_and_validates(client, runtime, account):
    session_id = _create(client, account, name="Old")["sessionId"]
    url = f"/api/sessions/{session_id}"
    renamed = client.patch(url, json={"name": " New name ", "description": "Orders"}, headers=account.headers)
    assert renamed.status_code == 200
    assert (renamed.get_json()["session"]["name"], renamed.get_json()["session"]["description"]) == (
        "New name",
        "Orders",
    )
    assert client.patch(url, json={"name": ""}, headers=account.headers).status_code == 400
    assert client.patch(url, json={"name": 5}, headers=account.headers).get_json()["code"] == "INVALID_FIELD"
    assert client.patch(url, json={"status": "connected"}, headers=account.headers).status_code == 400
    assert client.patch(url, json={"name": "x" * 101}, headers=account.headers).status_code == 400
    assert client.post("/api/sessions", json={"name": ["list"]}, headers=account.headers).status_code == 400


def test_disconnect_keeps_the_pairing_and_connect_comes_back_without_a_scan(client, account, shop):
    response = client.post(f"/api/sessions/{shop}/disconnect", headers=account.headers)
    assert response.status_code == 200
    status = wait_for(lambda: (s := _status(client, account, shop))["status"] == "disconnected" and s)
    assert status["reason"] == "Disconnected by the owner"
    assert status["phone"] == "919876543210"
    reconnect = client.post(f"/api/sessions/{shop}/connect", headers=account.headers).get_json()
    assert reconnect["status"] == "connecting"
    wait_for(lambda: _status(client, account, shop)["status"] == "connected")
    assert _status(client, account, shop)["phone"] == "919876543210"


def test_logout_unlinks_so_the_next_connect_needs_a_new_scan(client, account, shop):
    client.post(f"/api/sessions/{shop}/logout", headers=account.headers)
    status = wait_for(lambda: (s := _status(client, account, shop))["status"] == "disconnected" and s)
    assert status["phone"] is None
    client.post(f"/api/sessions/{shop}/connect", headers=account.headers)
    qr = client.get(f"/api/sessions/{shop}/qr", headers=account.headers).get_json()
    assert qr["status"] == "pending" and qr["qrCode"]


def test_delete_removes_the_session_and_frees_the_plan_slot(client, account, shop):
    response = client.delete(f"/api/sessions/{shop}", headers=account.headers)
    assert response.get_json()["success"] is True
    assert client.get(f"/api/sessions/{shop}", headers=account.headers).status_code == 404
    assert client.get("/api/sessions", headers=account.headers).get_json() == {"sessions": [], "total": 0}
    _create(client, account)


PAIR_CODE = re.compile(r"[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}")


def test_pairing_by_phone_number_gives_a_code_the_phone_enters(client, runtime, account):
    session_id = _create(client, account)["sessionId"]
    wait_for(lambda: _status(client, account, session_id)["status"] == "pending")

    response = client.post(
        f"/api/sessions/{session_id}/pair-code", json={"phone": "+91 98765 43210"}, headers=account.headers
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert PAIR_CODE.fullmatch(body["code"]) and "Link with phone number" in body["message"]
    # The phone enters a wrong code, then the right one (any case, any dash).
    wrong = client.post(f"/sim/pair-code/{session_id}", json={"code": "2222-2222"})
    assert wrong.status_code == 409 and wrong.get_json()["code"] == "PAIR_CODE_INVALID"
    entered = client.post(f"/sim/pair-code/{session_id}", json={"code": body["code"].lower().replace("-", "")})
    assert entered.status_code == 200, entered.get_json()
    assert _status(client, account, session_id)["status"] == "connected"
    assert client.get(f"/api/sessions/{session_id}", headers=account.headers).get_json()["phone"] == "919876543210"


def test_a_pairing_code_needs_a_session_waiting_to_be_linked_and_a_real_number(client, runtime, make_account):
    account = make_account(plan="growth")
    shop = pair_session(client, account)
    connected = client.post(f"/api/sessions/{shop}/pair-code", json={"phone": "919876543210"}, headers=account.headers)
    assert connected.status_code == 409 and connected.get_json()["code"] == "NOT_PAIRING"
    pending = _create(client, account)["sessionId"]
    for phone in (None, "12", "not a number"):
        bad = client.post(f"/api/sessions/{pending}/pair-code", json={"phone": phone}, headers=account.headers)
        assert bad.status_code == 400 and bad.get_json()["code"] == "INVALID_PHONE"


def test_a_pairing_code_is_refused_while_whatsapp_cannot_be_reached(client, runtime, account):
    session_id = _create(client, account)["sessionId"]
    wait_for(lambda: _status(client, account, session_id)["status"] == "pending")
    faults = client.put(
        f"/api/simulator/faults?sessionId={session_id}", json={"unreachable": True}, headers=account.headers
    )
    assert faults.status_code == 200
    response = client.post(
        f"/api/sessions/{session_id}/pair-code", json={"phone": "919876543210"}, headers=account.headers
    )
    assert response.status_code == 503 and response.get_json()["code"] == "UNREACHABLE"


def test_a_session_shows_the_engine_host_that_holds_it_and_its_sends_name_it(client, runtime, account, shop):
    host = runtime.engine_host.id
    detail = client.get(f"/api/sessions/{shop}", headers=account.headers).get_json()
    assert detail["host"] == host
    assert "host" not in client.get("/api/sessions", headers=account.headers).get_json()["sessions"][0]

    sent = client.post(
        f"/api/sessions/{shop}/send", json={"to": "919876543210", "message": "Hi"}, headers=account.headers
    )
    assert sent.status_code in (200, 201, 202), sent.get_json()
    wait_for(lambda: runtime.engine_host.engine.outbox(shop))
    assert [(entry["text"], entry["host"]) for entry in runtime.engine_host.engine.outbox(shop)] == [("Hi", host)]
