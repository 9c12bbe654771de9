"""Every kind of message, sent through HTTP on the simulator and read back from the API and the network."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.fixtures import MP3, MP4, OGG, PDF, PNG, WEBP, data_url


@pytest.fixture
def sender(account, shop):
    return account, shop


def _send(client, account, session_id, payload: dict):
    return client.post(
        f"/api/sessions/{session_id}/send", json={"to": "919876543210", **payload}, headers=account.headers
    )


def _outbox(runtime, session_id) -> dict:
    """The network's copy of each message, by WhatsApp id."""
    return {entry["id"]: entry for entry in runtime.engine_host.engine.outbox(session_id)}


def _sent(client, account, session_id, runtime, payload: dict) -> tuple[dict, dict]:
    """Send; return the message as the API shows it and as the network received it."""
    response = _send(client, account, session_id, payload)
    assert response.status_code == 200, response.get_json()
    message = client.get(f"/api/messages/{response.get_json()['messageId']}", headers=account.headers).get_json()
    return message, _outbox(runtime, session_id)[message["waMessageId"]]


MEDIA_CASES = [
    ("image", {"image": {"data": data_url(PNG, "image/png"), "caption": "Your receipt"}}, PNG, "image/png"),
    ("video", {"video": {"url": data_url(MP4, "video/mp4"), "caption": "How to"}}, MP4, "video/mp4"),
    ("audio", {"audio": data_url(MP3, "audio/mpeg")}, MP3, "audio/mpeg"),
    ("ptt", {"audio": {"url": data_url(OGG, "audio/ogg"), "ptt": True}}, OGG, "audio/ogg"),
    (
        "document",
        {"document": {"url": data_url(PDF, "application/pdf"), "filename": "invoice-42.pdf", "caption": "Invoice"}},
        PDF,
        "application/pdf",
    ),
    ("sticker", {"sticker": data_url(WEBP, "image/webp")}, WEBP, "image/webp"),
]


@pytest.mark.parametrize(("kind", "payload", "data", "mimetype"), MEDIA_CASES)
def test_media_of_every_kind_reaches_the_network_byte_for_byte(client, runtime, sender, kind, payload, data, mimetype):
    account, session_id = sender
    message, delivered = _sent(client, account, session_id, runtime, payload)
    assert message["type"] == kind
    assert delivered["kind"] == kind
    assert delivered["media"] == {
        "mimetype": mimetype,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **({"filename": "invoice-42.pdf"} if kind == "document" else {}),
    }
    assert message["content"]["mimetype"] == mimetype
    assert message["content"]["size"] == len(data)
    caption = {"image": "Your receipt", "video": "How to", "document": "Invoice"}.get(kind, "")
    assert delivered.get("text", "") == caption


def test_location_contact_and_poll(client, runtime, sender):
    account, session_id = sender
    message, delivered = _sent(
        client,
        account,
        session_id,
        runtime,
        {"location": {"latitude": 12.9716, "longitude": 77.5946, "name": "Shop", "address": "MG Road"}},
    )
    assert message["type"] == "location"
    assert delivered["location"] == {"latitude": 12.9716, "longitude": 77.5946, "name": "Shop", "address": "MG Road"}
    assert message["message"] == "📍 Shop"

    message, delivered = _sent(
        client, account, session_id, runtime, {"contact": {"fullName": "Asha Rao", "phoneNumber": "+91 98450 12345"}}
    )
    assert (message["type"], delivered["contact"]) == ("contact", {"full_name": "Asha Rao", "phone": "919845012345"})

    message, delivered = _sent(
        client,
        account,
        session_id,
        runtime,
        {"poll": {"question": "Pickup or delivery?", "options": ["Pickup", "Delivery"], "multipleAnswers": False}},
    )
    assert message["type"] == "poll"
    assert delivered["poll"] == {
        "question": "Pickup or delivery?",
        "options": ["Pickup", "Delivery"],
        "multiple_answers": False,
    }


def test_replies_mentions_reactions_view_once_and_link_previews(client, runtime, sender):
    account, session_id = sender
    first, first_delivered = _sent(client, account, session_id, runtime, {"message": "Order 42 is ready"})

    reply, delivered = _sent(
        client,
        account,
        session_id,
        runtime,
        {"message": "Hi @919811112222, see above", "quoted": first["messageId"], "mentions": ["+91 98111 12222"]},
    )
    assert delivered["quoted"] == {"id": first["waMessageId"], "from_me": True, "text": "Order 42 is ready"}
    assert delivered["mentions"] == ["919811112222"]
    assert reply["content"]["quotedWaId"] == first["waMessageId"]

    reaction, delivered = _sent(
        client, account, session_id, runtime, {"reaction": {"messageId": first["messageId"], "emoji": "👍"}}
    )
    assert reaction["type"] == "reaction"
    assert delivered["reaction"] == {"message_wa_id": first["waMessageId"], "from_me": True, "emoji": "👍"}

    _, delivered = _sent(
        client, account, session_id, runtime, {"image": {"url": data_url(PNG, "image/png"), "viewOnce": True}}
    )
    assert delivered["view_once"] is True

    _, delivered = _sent(
        client, account, session_id, runtime, {"message": "https://example.com/menu", "linkPreview": False}
    )
    assert delivered["link_preview"] is False
    assert first_delivered["link_preview"] is True


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"image": "data:image/png;base64," + base64.b64encode(b"MZ\x90\x00" + bytes(50)).decode()}, 415, None),
        ({"image": {"url": "http://169.254.169.254/latest/meta-data/"}}, 400, "URL_NOT_ALLOWED"),
        ({"image": data_url(PNG, "image/png"), "video": data_url(MP4, "video/mp4")}, 400, "AMBIGUOUS_MESSAGE"),
        ({"location": {"latitude": 123, "longitude": 0}}, 400, "INVALID_LOCATION"),
        ({"poll": {"question": "One?", "options": ["only"]}}, 400, "INVALID_POLL"),
        ({"reaction": {"messageId": "not-a-message", "emoji": "👍"}}, 404, "MESSAGE_NOT_FOUND"),
        ({"document": {"url": data_url(PDF, "application/pdf")}, "viewOnce": True}, 400, "INVALID_FIELD"),
        ({"sticker": data_url(WEBP, "image/webp"), "caption": "no"}, 400, "INVALID_FIELD"),
    ],
)
def test_bad_messages_get_clear_errors_and_send_nothing(client, runtime, sender, payload, status, code):
    account, session_id = sender
    response = _send(client, account, session_id, payload)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == (code or "UNSUPPORTED_MEDIA_TYPE")
    assert _outbox(runtime, session_id) == {}


def test_a_17_mb_image_is_refused_with_413(client, runtime, sender):
    account, session_id = sender
    response = _send(client, account, session_id, {"image": data_url(PNG + bytes(17 * 1024 * 1024), "image/png")})
    assert (response.status_code, response.get_json()["code"]) == (413, "MEDIA_TOO_LARGE")


def test_a_test_key_simulates_any_kind(client, runtime, sender):
    account, session_id = sender
    key = client.post("/api/keys", json={"name": "ci", "mode": "test"}, headers=account.headers).get_json()["key"]
    response = client.post(
        f"/api/sessions/{session_id}/send",
        json={"to": "919876543210", "location": {"latitude": 1, "longitude": 2}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    assert response.get_json()["simulated"] is True
    assert _outbox(runtime, session_id) == {}
