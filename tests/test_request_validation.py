"""Requests the API must refuse cleanly (4xx in the error shape, never a 500), and the rules a
sent field follows wherever it appears; each case is one schemathesis found against the
OpenAPI document (tests/test_openapi_fuzz.py)."""

from __future__ import annotations

import pytest

from blueprints.contract.wiring import MAX_JSON_DEPTH
from tests.fixtures import data_url
from tests.helpers import pair_session

OGG = b"OggS\x00\x02" + bytes(64)
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(32)


def test_a_method_a_route_does_not_take_is_405_with_the_methods_it_does(client, account):
    response = client.put("/api/keys", headers=account.headers)
    assert response.status_code == 405
    assert response.get_json()["code"] == "METHOD_NOT_ALLOWED"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_an_api_key_mode_that_is_not_a_string_is_refused(client, account):
    response = client.post("/api/keys", json={"name": "ci", "mode": {}}, headers=account.headers)
    assert response.status_code == 400
    assert response.get_json()["field"] == "mode"


def test_a_bulk_delay_longer_than_a_day_is_refused(client, growth_session):
    account, _ = growth_session
    body = {"contacts": ["919876543210"], "message": "Hi", "delay": 1e30}
    response = client.post("/api/whatsapp/bulk-send", json=body, headers=account.headers)
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_DELAY"


def test_a_poll_vote_needs_a_message_id_string(client, account, shop):
    body = {"from": "919812345678", "vote": {"messageId": {}, "options": []}}
    response = client.post(f"/api/simulator/sessions/{shop}/inbound", json=body, headers=account.headers)
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_FIELD"


def test_null_flags_are_left_out_and_every_caption_sent_is_checked(client, runtime, account):
    session_id = pair_session(client, account)

    def send(payload: dict):
        return client.post(
            f"/api/sessions/{session_id}/send", json={"to": "919876543210", **payload}, headers=account.headers
        )

    voice = {"audio": {"url": data_url(OGG, "audio/ogg"), "ptt": None}, "ptt": True, "viewOnce": None}
    assert send(voice).status_code == 200
    # A sticker has no caption, whether it comes as its own, the body's or the message.
    sticker = data_url(WEBP, "image/webp")
    for captioned in (
        {"sticker": {"url": sticker, "caption": ""}, "message": "Hi"},
        {"sticker": sticker, "caption": "x"},
    ):
        response = send(captioned)
        assert response.status_code == 400, captioned
        assert response.get_json()["field"] == "caption"
    # A malformed flag is refused even where another one decides.
    response = send({"audio": {"url": data_url(OGG, "audio/ogg"), "ptt": "yes"}, "ptt": True})
    assert response.status_code == 400
    assert response.get_json()["field"] == "ptt"


def test_whole_numbers_may_come_as_12_or_12_0_as_json_allows(client, account, shop):
    body = {"perMinute": 12.0, "perDay": 500, "warmup": [50.0, 100]}
    response = client.put(f"/api/sessions/{shop}/pace", json=body, headers=account.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["pace"] | body == response.get_json()["pace"]
    refused = client.put(f"/api/sessions/{shop}/pace", json={"perMinute": 12.5}, headers=account.headers)
    assert refused.status_code == 400


def test_patch_on_a_fixed_messages_route_is_405_not_a_missing_message(client, account):
    for path in ("/api/messages/failed", "/api/messages/stats", "/api/messages/scheduled"):
        response = client.patch(path, json={"sendAt": "2030-01-01T00:00:00Z"}, headers=account.headers)
        assert response.status_code == 405, path
        assert "PATCH" not in response.headers["Allow"]


@pytest.mark.parametrize("message_id", ["0", "not-a-uuid", "3f0c8f7e-0000-4000-8000-000000000000"])
def test_every_message_id_has_the_same_routes_and_allow(client, account, message_id):
    """One route, one Allow, whatever the id looks like; an id that is no message is 404."""
    options = client.options(f"/api/messages/{message_id}", headers=account.headers)
    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "PATCH"}
    response = client.patch(
        f"/api/messages/{message_id}", json={"sendAt": "2030-01-01T00:00:00Z"}, headers=account.headers
    )
    assert (response.status_code, response.get_json()["code"]) == (404, "MESSAGE_NOT_FOUND")


def test_a_number_with_the_international_dialling_prefix_is_explained(client, account, shop):
    response = client.post(
        f"/api/sessions/{shop}/send", json={"to": "00919876543210", "message": "Hi"}, headers=account.headers
    )
    assert response.status_code == 400
    body = response.get_json()
    assert (body["code"], body["field"]) == ("INVALID_NUMBER", "to")
    assert body["message"] == (
        "'to' starts with 00, the prefix for dialling abroad: give the country code without it, e.g. 919876543210"
    )


def _raw(client, method: str, url: str, body: str, headers: dict):
    return client.open(url, method=method, data=body, content_type="application/json", headers=headers)


def test_an_unknown_field_on_key_creation_is_refused_by_name_and_grants_nothing(client, account, shop):
    # "sessions" for "sessionIds": silently dropped, it would make an unrestricted key.
    response = client.post("/api/keys", json={"name": "ci", "sessions": [shop]}, headers=account.headers)
    assert response.status_code == 400
    body = response.get_json()
    assert (body["code"], body["field"]) == ("INVALID_FIELD", "sessions")
    assert "'sessions'" in body["message"]
    assert client.get("/api/keys", headers=account.headers).get_json()["total"] == 0


@pytest.mark.parametrize("config_overrides", [{"ALLOW_PRIVATE_URLS": True}])
def test_unknown_fields_are_refused_wherever_something_is_granted_or_routed(client, runtime, make_account):
    account = make_account(plan="starter")
    session = f"/api/sessions/{pair_session(client, account)}"
    webhook = client.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=account.headers)
    assert webhook.status_code == 201, webhook.get_json()
    webhook = webhook.get_json()
    refused = [
        ("POST", "/api/sessions", {"name": "Shop", "webhook": "https://x"}, "webhook"),
        ("PATCH", session, {"name": "Shop", "nmae": "Shop 2"}, "nmae"),
        ("PUT", f"{session}/pace", {"perMinute": 5, "perHour": 50}, "perHour"),
        ("POST", "/api/webhooks", {"url": "http://127.0.0.1:9/other", "event": ["message.received"]}, "event"),
        ("PATCH", f"/api/webhooks/{webhook['id']}", {"enable": False}, "enable"),
        ("POST", f"{session}/pair-code", {"phone": "919876543210", "number": "1"}, "number"),
    ]
    for method, url, body, field in refused:
        response = client.open(url, method=method, json=body, headers=account.headers)
        assert response.status_code == 400, (method, url, response.get_json())
        assert response.get_json()["field"] == field, (method, url)


def test_a_send_tolerates_fields_it_does_not_know(client, account, shop):
    body = {"to": "919876543210", "message": "Hi", "priority": "high", "callback": {"url": "x"}}
    assert client.post(f"/api/sessions/{shop}/send", json=body, headers=account.headers).status_code == 200
    legacy = {"number": "919876543210", "message": "Hi", "type": "text"}
    assert client.post("/api/whatsapp/send", json=legacy, headers=account.headers).status_code in (200, 202)


@pytest.mark.parametrize("mode", ["live", "test"])
def test_a_string_with_an_unpaired_surrogate_is_400_not_stored(client, account, shop, mode):
    headers = account.headers
    if mode == "test":
        key = client.post("/api/keys", json={"name": "ci", "mode": "test"}, headers=headers).get_json()["key"]
        headers = {"Authorization": f"Bearer {key}"}
    body = '{"to": "919876543210", "message": "caf\\ud800e"}'
    response = _raw(client, "POST", f"/api/sessions/{shop}/send", body, headers)
    assert response.status_code == 400
    assert (response.get_json()["code"], response.get_json()["field"]) == ("INVALID_UNICODE", "message")
    # A key too, and a lone low surrogate: still 400, nothing stored.
    for body in ('{"\\udc00": 1}', '{"name": "\\udfff"}'):
        response = _raw(client, "POST", "/api/sessions", body, account.headers)
        assert (response.status_code, response.get_json()["code"]) == (400, "INVALID_UNICODE")
    assert client.get("/api/messages", headers=account.headers).get_json()["total"] == 0
    # A proper pair (an emoji written as two escapes) is text like any other.
    emoji = '{"to": "919876543210", "message": "\\ud83d\\ude00"}'
    assert _raw(client, "POST", f"/api/sessions/{shop}/send", emoji, headers).status_code == 200


def test_a_body_nested_deeper_than_the_limit_is_400_invalid_json(client, account, shop):
    url = f"/api/sessions/{shop}/send"
    for depth in (1000, 100_000):
        body = '{"to": "919876543210", "message": "Hi", "extra": ' + "[" * depth + "]" * depth + "}"
        response = _raw(client, "POST", url, body, account.headers)
        assert (response.status_code, response.get_json()["code"]) == (400, "INVALID_JSON"), depth
        assert f"{MAX_JSON_DEPTH} levels" in response.get_json()["message"]

    def nested(levels: int) -> str:
        # The body object is level 1; `extra` adds levels - 1 more.
        inner = levels - 1
        return '{"to": "919876543210", "message": "Hi", "extra": ' + "[" * inner + "]" * inner + "}"

    assert _raw(client, "POST", url, nested(MAX_JSON_DEPTH), account.headers).status_code == 200
    too_deep = _raw(client, "POST", url, nested(MAX_JSON_DEPTH + 1), account.headers)
    assert (too_deep.status_code, too_deep.get_json()["code"]) == (400, "INVALID_JSON")


def test_nan_and_infinity_are_not_json(client, account, shop):
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = '{"minGapSeconds": ' + constant + "}"
        response = _raw(client, "PUT", f"/api/sessions/{shop}/pace", body, account.headers)
        assert (response.status_code, response.get_json()["code"]) == (400, "INVALID_JSON"), constant


@pytest.mark.parametrize("value", [12345, True, ["Hi"]])
def test_a_message_that_is_not_text_is_called_so(client, account, runtime, value):
    session_id = client.post("/api/sessions", json={"name": "Shop"}, headers=account.headers).get_json()["sessionId"]
    body = {"to": "919876543210", "message": value}
    response = client.post(f"/api/sessions/{session_id}/send", json=body, headers=account.headers)
    assert response.status_code == 400
    answer = response.get_json()
    assert (answer["code"], answer["field"]) == ("EMPTY_MESSAGE", "message")
    assert answer["message"] == "'message' must be text (a JSON string): the text to send"
