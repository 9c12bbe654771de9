"""The self-hosted gateway's API, served at /api/v1 (docs/reference/selfhosted-gateway-api.txt).

Its users authenticate account routes with a personal access token in `X-API-Token` and
session routes with a session key as a Bearer token; on wagate those are an API key not
restricted to sessions and an API key restricted to one session. Each example is sent as
its document writes it, with the base URL and key swapped.
"""

from __future__ import annotations

import pytest

BASE = "/api/v1"


def _key(client, account, **body) -> str:
    response = client.post("/api/keys", json={"name": "gateway", **body}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["key"]


@pytest.fixture
def account(make_account):
    """A Growth-plan account (three sessions): `shop` is its."""
    return make_account(plan="growth")


@pytest.fixture
def pat(client, account) -> dict:
    """A personal access token's headers, as the document writes them."""
    return {"X-API-Token": _key(client, account)}


@pytest.fixture
def session_key(client, account, shop) -> dict:
    """The headers with `shop`'s session key (a key bound to that one session)."""
    return {"Authorization": f"Bearer {_key(client, account, sessionIds=[shop])}"}


def _error(response, code: str, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


# -- sessions -----------------------------------------------------------------------------------


def test_sessions_are_listed_created_shown_and_deleted_with_a_personal_token(client, runtime, pat):
    assert client.get(f"{BASE}/whatsapp-sessions", headers=pat).get_json() == {"sessions": [], "total": 0}
    created = client.post(f"{BASE}/whatsapp-sessions", json={"name": "Support"}, headers=pat)
    assert created.status_code == 201, created.get_json()
    session_id = created.get_json()["sessionId"]
    assert created.get_json()["name"] == "Support"
    listed = client.get(f"{BASE}/whatsapp-sessions", headers=pat).get_json()
    assert [s["sessionId"] for s in listed["sessions"]] == [session_id]
    shown = client.get(f"{BASE}/whatsapp-sessions/{session_id}", headers=pat)
    assert shown.status_code == 200 and shown.get_json()["name"] == "Support"
    qr = client.get(f"{BASE}/whatsapp-sessions/{session_id}/qrcode", headers=pat).get_json()
    assert qr["qrCode"].startswith("data:image/png;base64,")
    deleted = client.delete(f"{BASE}/whatsapp-sessions/{session_id}", headers=pat)
    assert deleted.status_code == 200 and deleted.get_json()["sessionId"] == session_id
    _error(client.get(f"{BASE}/whatsapp-sessions/{session_id}", headers=pat), "SESSION_NOT_FOUND", 404)


def test_a_session_connects_and_disconnects(client, runtime, pat, shop):
    done = client.post(f"{BASE}/whatsapp-sessions/{shop}/disconnect", headers=pat)
    assert done.status_code == 200 and done.get_json()["sessionId"] == shop
    connected = client.post(f"{BASE}/whatsapp-sessions/{shop}/connect", headers=pat)
    assert connected.status_code == 200 and connected.get_json()["sessionId"] == shop


def test_a_session_key_sees_only_its_session_and_creates_none(client, account, session_key, shop, pat):
    other = client.post(f"{BASE}/whatsapp-sessions", json={"name": "Other"}, headers=pat).get_json()["sessionId"]
    listed = client.get(f"{BASE}/whatsapp-sessions", headers=session_key).get_json()
    assert [s["sessionId"] for s in listed["sessions"]] == [shop]
    assert client.get(f"{BASE}/whatsapp-sessions/{shop}", headers=session_key).status_code == 200
    _error(client.get(f"{BASE}/whatsapp-sessions/{other}", headers=session_key), "FORBIDDEN", 403)
    _error(client.post(f"{BASE}/whatsapp-sessions", json={}, headers=session_key), "FORBIDDEN", 403)


def test_auth_failures_are_unauthorized(client, account):
    _error(client.get(f"{BASE}/whatsapp-sessions"), "UNAUTHORIZED", 401)
    _error(client.get(f"{BASE}/whatsapp-sessions", headers={"X-API-Token": "wag_live_nope"}), "UNAUTHORIZED", 401)
    _error(client.get(f"{BASE}/whatsapp-sessions", headers={"Authorization": "Bearer nope"}), "UNAUTHORIZED", 401)
    # A login token is a personal access token too.
    assert client.get(f"{BASE}/whatsapp-sessions", headers={"X-API-Token": account.token}).status_code == 200


def test_a_bad_session_body_is_a_validation_error(client, pat):
    error = _error(client.post(f"{BASE}/whatsapp-sessions", json={"name": 5}, headers=pat), "VALIDATION_ERROR", 422)
    assert error["field"] == "name"
    response = client.post(f"{BASE}/whatsapp-sessions", data="{", headers=pat | {"Content-Type": "application/json"})
    assert _error(response, "VALIDATION_ERROR", 422)["reason"] == "INVALID_JSON"


def test_its_document_is_served_and_linked(client):
    document = client.get(f"{BASE}/selfhosted/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://localhost/api/v1"}]
    assert "/whatsapp-sessions/{sessionId}/qrcode" in document["paths"]
    assert set(document["components"]["securitySchemes"]) == {"sessionKey", "personalToken"}
    assert client.get(f"{BASE}/selfhosted/docs").status_code == 200
