"""Requests the API must refuse cleanly (4xx in the error shape, never a 500), and the rules a
sent field follows wherever it appears; each case is one schemathesis found against the
OpenAPI document (tests/test_openapi_fuzz.py)."""

from __future__ import annotations

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
