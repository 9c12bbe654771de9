"""The legacy single-session API, called as the doc's curl examples do: without credentials."""

from urllib.parse import urlsplit

import pytest

from tests.helpers import decode_qr, wait_for

UNTRUSTED = {"REMOTE_ADDR": "203.0.113.9"}


def _pair_legacy(client) -> str:
    init = client.post("/api/whatsapp/init")
    assert init.status_code == 200
    assert init.get_json()["status"] == "connecting"
    qr = client.get("/api/whatsapp/qr").get_json()
    assert qr["status"] == "pending"
    client.post(urlsplit(decode_qr(qr["qrCode"])).path, json={"phone": "919812345678"})
    status = client.get("/api/whatsapp/status").get_json()
    assert (status["status"], status["connected"], status["phone"]) == ("connected", True, "919812345678")
    return init.get_json()["sessionId"]


def test_a_script_on_a_trusted_network_runs_the_whole_legacy_flow(client, runtime):
    _pair_legacy(client)
    again = client.post("/api/whatsapp/init").get_json()
    assert again["status"] == "connected"
    sent = client.post("/api/whatsapp/send", json={"number": "919876543210", "message": "Hello from WAMessenger!"})
    assert sent.status_code == 200
    assert sent.get_json()["success"] is True
    assert sent.get_json()["message"] == "Message sent successfully"


def test_untrusted_callers_without_credentials_get_401(client):
    for method, url in [("post", "/api/whatsapp/init"), ("get", "/api/whatsapp/qr"), ("get", "/api/whatsapp/status")]:
        response = getattr(client, method)(url, environ_base=UNTRUSTED)
        assert response.status_code == 401, url
        assert response.get_json()["code"] == "AUTH_REQUIRED"
    response = client.post(
        "/api/whatsapp/send", json={"number": "919876543210", "message": "hi"}, environ_base=UNTRUSTED
    )
    assert response.status_code == 401


def test_a_token_makes_the_legacy_api_act_for_its_own_user(client, account, shop):
    status = client.get("/api/whatsapp/status", headers=account.headers, environ_base=UNTRUSTED).get_json()
    assert (status["sessionId"], status["status"]) == (shop, "connected")
    # The trusted-network owner is somebody else, with no session yet.
    assert client.get("/api/whatsapp/status").get_json()["code"] == "SESSION_NOT_FOUND"


@pytest.mark.parametrize("config_overrides", [{"LEGACY_OWNER_AUTO_CREATE": False}])
def test_without_a_legacy_owner_the_error_says_how_to_configure_one(client):
    response = client.post("/api/whatsapp/init")
    assert response.status_code == 401
    assert "LEGACY_OWNER_EMAIL" in response.get_json()["message"]


def test_legacy_bulk_send_answers_the_documented_shape(client, runtime):
    _pair_legacy(client)
    response = client.post(
        "/api/whatsapp/bulk-send",
        json={
            "contacts": ["919876543210", {"number": "919876543211"}, "919876540000", "not a number", "+91 98765 43210"],
            "message": "Special offer just for you!",
            "delay": 0,
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["total"], body["sent"], body["failed"]) == (5, 2, 3)
    assert body["results"] == [
        {"contact": "919876543210", "success": True, "status": "Sent", "messageId": body["results"][0]["messageId"]},
        {"contact": "919876543211", "success": True, "status": "Sent", "messageId": body["results"][1]["messageId"]},
        {
            "contact": "919876540000",
            "success": False,
            "status": "Failed",
            "error": "Number not on WhatsApp",
            "messageId": body["results"][2]["messageId"],
        },
        {"contact": "not a number", "success": False, "status": "Failed", "error": "Invalid phone number"},
        {"contact": "+91 98765 43210", "success": False, "status": "Failed", "error": "Duplicate number in this batch"},
    ]


@pytest.mark.parametrize("config_overrides", [{"BULK_WAIT_SECONDS": 0.5}])
def test_a_long_batch_answers_202_with_a_progress_url_and_finishes(client, runtime, account):
    client.post("/api/whatsapp/init")
    _ = account
    qr = client.get("/api/whatsapp/qr").get_json()
    client.post(urlsplit(decode_qr(qr["qrCode"])).path)
    contacts = [f"9198765432{i:02d}" for i in range(5)]
    response = client.post("/api/whatsapp/bulk-send", json={"contacts": contacts, "message": "Paced", "delay": 300})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "running" and body["total"] == 5
    pending = [result for result in body["results"] if result["status"] == "Pending"]
    assert pending, body["results"]  # not sent yet, and not failed: no success either way
    assert all("success" not in result and result["messageId"] for result in pending)
    progress_path = urlsplit(body["progressUrl"]).path
    assert progress_path == f"/api/whatsapp/bulk-send/{body['batchId']}"
    final = wait_for(lambda: (b := client.get(progress_path).get_json())["status"] == "finished" and b)
    assert (final["sent"], final["failed"], final["pending"]) == (5, 0, 0)
    assert [r["status"] for r in final["results"]] == ["Sent"] * 5
