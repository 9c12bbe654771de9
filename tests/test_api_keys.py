"""API keys: create, list and revoke them; use them like tokens; test keys simulate sends."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from extensions import socketio
from tests.helpers import decode_qr, wait_for

KEY_PATTERN = re.compile(r"^wag_(live|test)_[0-9a-f]{64}$")
UNTRUSTED = {"REMOTE_ADDR": "203.0.113.9"}


def _create(client, account, **body) -> dict:
    response = client.post("/api/keys", json={"name": "Billing server", **body}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _send(client, headers, session_id, to="919876543210", text="Hello from wagate!"):
    return client.post(f"/api/sessions/{session_id}/send", json={"to": to, "message": text}, headers=headers)


def _outbox(runtime, session_id) -> list[dict]:
    return runtime.engine_host.engine.outbox(session_id)


def _paired(client, account, name="Shop") -> str:
    session_id = client.post("/api/sessions", json={"name": name}, headers=account.headers).get_json()["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    assert client.post(urlsplit(decode_qr(qr["qrCode"])).path, json={"phone": "919812345678"}).status_code == 200
    return session_id


def test_a_new_key_is_shown_once_and_lists_show_only_its_prefix(client, account):
    created = _create(client, account)
    key = created["key"]
    assert KEY_PATTERN.match(key) and key.startswith("wag_live_")
    assert created["prefix"] == key[:13]
    assert {k: created[k] for k in ("name", "mode", "sessionIds", "expiresAt", "lastUsedAt", "revoked")} == {
        "name": "Billing server",
        "mode": "live",
        "sessionIds": [],
        "expiresAt": None,
        "lastUsedAt": None,
        "revoked": False,
    }
    assert created["createdAt"].endswith("Z")

    listed = client.get("/api/keys", headers=account.headers)
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["total"] == 1
    assert body["keys"][0] == {k: v for k, v in created.items() if k not in {"key", "success", "message"}}
    assert key not in listed.get_data(as_text=True)
    assert key[13:] not in listed.get_data(as_text=True)


def test_a_key_works_as_a_bearer_token_and_as_x_api_key(client, account, shop):
    key = _create(client, account)["key"]
    for headers in (_bearer(key), {"X-Api-Key": key}):
        response = client.get("/api/sessions", headers=headers)
        assert response.status_code == 200
        assert [s["sessionId"] for s in response.get_json()["sessions"]] == [shop]
    me = client.get("/api/me", headers={"X-Api-Key": key}).get_json()
    assert me["user"]["email"] == account.email
    assert client.get("/api/keys", headers=account.headers).get_json()["keys"][0]["lastUsedAt"]


def test_a_live_key_sends_for_real_on_the_session_and_legacy_apis(client, account, shop, runtime):
    key = _create(client, account)["key"]
    sent = _send(client, _bearer(key), shop)
    assert sent.status_code == 200
    assert "simulated" not in sent.get_json()
    legacy = client.post(
        "/api/whatsapp/send",
        json={"number": "919876543211", "message": "Hello from WAMessenger!"},
        headers={"X-Api-Key": key},
        environ_base=UNTRUSTED,
    )
    assert legacy.status_code == 200 and legacy.get_json()["success"] is True
    assert [m["to"] for m in _outbox(runtime, shop)] == ["919876543210", "919876543211"]


def test_revoked_unknown_and_expired_keys_are_401(app, client, account):
    revoked = _create(client, account)
    response = client.delete(f"/api/keys/{revoked['id']}", headers=account.headers)
    assert response.status_code == 200
    assert response.get_json()["key"]["revoked"] is True
    assert client.get("/api/keys", headers=account.headers).get_json()["keys"][0]["revoked"] is True

    expiring = _create(client, account, expiresAt=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    assert client.get("/api/sessions", headers=_bearer(expiring["key"])).status_code == 200
    from extensions import db
    from models import ApiKey

    with app.app_context():
        db.session.get(ApiKey, expiring["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()

    unknown = "wag_live_" + "0" * 64
    for key, code in [
        (revoked["key"], "API_KEY_REVOKED"),
        (expiring["key"], "API_KEY_EXPIRED"),
        (unknown, "INVALID_API_KEY"),
    ]:
        for headers in (_bearer(key), {"X-Api-Key": key}):
            response = client.get("/api/sessions", headers=headers)
            assert (response.status_code, response.get_json()["code"]) == (401, code)
        legacy = client.get("/api/whatsapp/status", headers={"X-Api-Key": key})
        assert legacy.status_code == 401


def test_only_the_owner_can_revoke_a_key(client, account, make_account):
    key = _create(client, account)
    other = make_account()
    response = client.delete(f"/api/keys/{key['id']}", headers=other.headers)
    assert (response.status_code, response.get_json()["code"]) == (404, "KEY_NOT_FOUND")
    assert client.get("/api/keys", headers=other.headers).get_json()["total"] == 0
    assert client.get("/api/sessions", headers=_bearer(key["key"])).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "CI", "mode": "staging"}, "mode"),
        ({"name": "CI", "sessionIds": "all"}, "sessionIds"),
        ({"name": "CI", "sessionIds": ["not-a-session"]}, "sessionIds"),
        ({"name": "CI", "expiresAt": "tomorrow"}, "expiresAt"),
        ({"name": "CI", "expiresAt": "2020-01-01T00:00:00Z"}, "expiresAt"),
    ],
)
def test_bad_key_requests_are_400(client, account, body, field):
    response = client.post("/api/keys", json=body, headers=account.headers)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert client.get("/api/keys", headers=account.headers).get_json()["total"] == 0


def test_a_key_limited_to_one_session_is_refused_for_the_others(client, make_account, runtime):
    account = make_account(plan="growth")
    shop, office = _paired(client, account, "Shop"), _paired(client, account, "Office")
    created = _create(client, account, sessionIds=[shop])
    assert created["sessionIds"] == [shop]
    headers = _bearer(created["key"])

    assert client.get(f"/api/sessions/{shop}", headers=headers).status_code == 200
    assert _send(client, headers, shop).status_code == 200
    for method, url in [
        ("get", f"/api/sessions/{office}"),
        ("get", f"/api/sessions/{office}/status"),
        ("post", f"/api/sessions/{office}/disconnect"),
        ("get", f"/api/messages?sessionId={office}"),
    ]:
        response = getattr(client, method)(url, headers=headers)
        assert (response.status_code, response.get_json()["code"]) == (403, "SESSION_NOT_ALLOWED"), url
    refused = _send(client, headers, office)
    assert (refused.status_code, refused.get_json()["code"]) == (403, "SESSION_NOT_ALLOWED")
    assert _outbox(runtime, office) == []

    office_message = _send(client, account.headers, office).get_json()["messageId"]
    assert client.get(f"/api/messages/{office_message}", headers=headers).status_code == 403
    assert [s["sessionId"] for s in client.get("/api/sessions", headers=headers).get_json()["sessions"]] == [shop]
    assert {m["sessionId"] for m in client.get("/api/messages", headers=headers).get_json()["messages"]} == {shop}
    assert client.post("/api/sessions", json={}, headers=headers).get_json()["code"] == "SESSION_NOT_ALLOWED"
    assert client.post("/api/keys", json={"name": "wider"}, headers=headers).status_code == 403


def test_the_legacy_api_honours_a_keys_session_limit(client, runtime, make_account):
    account = make_account(plan="growth")
    default, other = _paired(client, account, "Default"), _paired(client, account, "Other")
    allowed = _bearer(_create(client, account, sessionIds=[default])["key"])
    limited = _bearer(_create(client, account, sessionIds=[other])["key"])
    assert client.get("/api/whatsapp/status", headers=allowed).get_json()["sessionId"] == default
    response = client.post("/api/whatsapp/send", json={"number": "919876543210", "message": "hi"}, headers=limited)
    assert (response.status_code, response.get_json()["code"]) == (403, "SESSION_NOT_ALLOWED")


def test_a_test_key_validates_like_live_but_never_sends(client, account, shop, runtime):
    created = _create(client, account, mode="test")
    key = created["key"]
    assert key.startswith("wag_test_") and created["mode"] == "test"
    headers = _bearer(key)

    response = _send(client, headers, shop, to="+91 98765-43210")
    assert response.status_code == 200
    body = response.get_json()
    assert body["simulated"] is True
    assert body["messageId"].startswith("sim_")
    assert (body["success"], body["status"], body["to"], body["message"]) == (
        True,
        "sent",
        "919876543210",
        "Message sent successfully",
    )
    legacy = client.post("/api/whatsapp/send", json={"number": "919876543211", "message": "hi"}, headers=headers)
    assert legacy.status_code == 200
    assert legacy.get_json()["simulated"] is True and legacy.get_json()["messageId"].startswith("sim_")

    for to, text, code in [("12345", "hi", "INVALID_NUMBER"), ("919876543210", "  ", "EMPTY_MESSAGE")]:
        live = _send(client, account.headers, shop, to=to, text=text)
        test = _send(client, headers, shop, to=to, text=text)
        assert (test.status_code, test.get_json()) == (live.status_code, live.get_json())
        assert test.get_json()["code"] == code
    assert _send(client, headers, "no-such-session").get_json()["code"] == "SESSION_NOT_FOUND"

    assert _outbox(runtime, shop) == []
    assert client.get("/api/messages", headers=account.headers).get_json()["total"] == 0
    assert client.get("/api/sessions", headers=account.headers).get_json()["sessions"][0]["messagesSent"] == 0
    assert client.get("/api/messages/stats", headers=account.headers).get_json()["totals"]["total"] == 0


def test_a_test_key_on_a_disconnected_session_answers_as_live_would(client, account, shop, runtime):
    client.post(f"/api/sessions/{shop}/disconnect", headers=account.headers)
    wait_for(
        lambda: (
            client.get(f"/api/sessions/{shop}/status", headers=account.headers).get_json()["status"] == "disconnected"
        )
    )
    response = _send(client, _bearer(_create(client, account, mode="test")["key"]), shop)
    assert (response.status_code, response.get_json()["code"]) == (400, "SESSION_NOT_CONNECTED")


def test_a_test_key_simulates_a_bulk_send(client, make_account, runtime):
    account = make_account(plan="growth")
    session_id = _paired(client, account)
    headers = _bearer(_create(client, account, mode="test")["key"])
    response = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": ["919876543210", "12345", "919876543211"], "message": "Hi all", "delay": 0},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["simulated"], body["status"], body["total"], body["sent"], body["failed"]) == (
        True,
        "finished",
        3,
        2,
        1,
    )
    assert [r["status"] for r in body["results"]] == ["Sent", "Failed", "Sent"]
    assert all(r["messageId"].startswith("sim_") for r in body["results"] if r["success"])
    assert _outbox(runtime, session_id) == []
    assert client.get("/api/messages", headers=account.headers).get_json()["total"] == 0


def test_a_test_key_cannot_manage_keys_or_change_sessions(client, account, shop):
    created = _create(client, account, mode="test")
    headers = _bearer(created["key"])
    for method, url in [
        ("post", "/api/keys"),
        ("get", "/api/keys"),
        ("delete", f"/api/keys/{created['id']}"),
        ("post", "/api/sessions"),
        ("post", f"/api/sessions/{shop}/logout"),
        ("delete", f"/api/sessions/{shop}"),
        ("post", "/api/whatsapp/init"),
        # Presence reaches WhatsApp, and pace or a resume changes how the session sends.
        ("post", f"/api/sessions/{shop}/presence"),
        ("post", f"/api/sessions/{shop}/presence/subscribe"),
        ("put", f"/api/sessions/{shop}/pace"),
        ("post", f"/api/sessions/{shop}/resume"),
    ]:
        response = getattr(client, method)(url, json={"name": "x"}, headers=headers)
        assert (response.status_code, response.get_json()["code"]) == (403, "LIVE_KEY_REQUIRED"), url
    assert client.get(f"/api/sessions/{shop}", headers=headers).get_json()["status"] == "connected"
    assert client.get("/api/keys", headers=account.headers).get_json()["keys"][0]["revoked"] is False


@pytest.mark.parametrize("config_overrides", [{"API_RATE_LIMIT": "4 per 15 minutes"}])
def test_key_requests_count_against_the_keys_user(client, account):
    key = _create(client, account)["key"]
    for headers in (account.headers, _bearer(key), {"X-Api-Key": key}, account.headers):
        assert client.get("/api/sessions", headers=headers).status_code == 200
    limited = client.get("/api/sessions", headers={"X-Api-Key": key})
    assert limited.status_code == 429
    assert client.get("/api/sessions", headers=account.headers).status_code == 429


def test_socket_clients_may_connect_with_an_unrestricted_key(app, client, account, shop):
    key = _create(client, account)["key"]
    limited = _create(client, account, sessionIds=[shop])["key"]
    assert socketio.test_client(app, flask_test_client=client, auth={"apiKey": key}).is_connected()
    assert not socketio.test_client(app, flask_test_client=client, auth={"apiKey": limited}).is_connected()
    assert not socketio.test_client(
        app, flask_test_client=client, auth={"apiKey": "wag_live_" + "0" * 64}
    ).is_connected()
