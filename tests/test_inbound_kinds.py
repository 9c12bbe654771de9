"""Messages of every kind arriving: stored with their details and media, streamed live,
reactions recorded on their message, media served to the owner only."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from extensions import db, socketio
from models import Message
from services.messaging.inbound import message_inbound
from tests.fixtures import MP4, OGG, PDF, PNG, WEBP, data_url
from tests.helpers import wait_for

CONTACT = "919811112222"
PDF_TYPE = "application/pdf"


def _arrive(client, account, session_id, payload: dict) -> dict:
    """A contact sends `payload`; the stored message, once it is in the log."""
    before = _inbound(client, account)
    response = client.post(
        f"/api/simulator/sessions/{session_id}/inbound", json={"from": CONTACT, **payload}, headers=account.headers
    )
    assert response.status_code == 202, response.get_json()
    wait_for(lambda: _inbound(client, account) > before, message="the inbound message")
    log = client.get("/api/messages", query_string={"direction": "inbound", "limit": 1}, headers=account.headers)
    return log.get_json()["messages"][0]


def _inbound(client, account) -> int:
    log = client.get("/api/messages", query_string={"direction": "inbound"}, headers=account.headers)
    return log.get_json()["total"]


MEDIA = [
    ("image", {"image": {"data": data_url(PNG, "image/png"), "caption": "Is this in stock?"}}, PNG, "image/png"),
    ("video", {"video": data_url(MP4, "video/mp4")}, MP4, "video/mp4"),
    ("ptt", {"audio": {"url": data_url(OGG, "audio/ogg"), "ptt": True}}, OGG, "audio/ogg"),
    (
        "document",
        {"document": {"url": data_url(PDF, "application/pdf"), "filename": "po.pdf"}},
        PDF,
        "application/pdf",
    ),
    ("sticker", {"sticker": data_url(WEBP, "image/webp")}, WEBP, "image/webp"),
]


@pytest.mark.parametrize(("kind", "payload", "data", "mimetype"), MEDIA)
def test_received_media_is_stored_and_served_to_its_owner(client, account, shop, kind, payload, data, mimetype):
    message = _arrive(client, account, shop, payload)
    assert (message["type"], message["from"], message["direction"]) == (kind, CONTACT, "inbound")
    assert message["content"]["size"] == len(data)
    assert message["content"]["sha256"] == hashlib.sha256(data).hexdigest()
    with client.get(message["mediaUrl"], headers=account.headers) as served:
        assert served.status_code == 200
        assert served.data == data
        assert served.mimetype == mimetype
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in served.headers["Content-Security-Policy"]
        if kind == "document":
            assert served.headers["Content-Disposition"].startswith("attachment")


def test_a_document_named_with_line_breaks_is_stored_and_served_under_a_clean_name(app, client, account, shop):
    """Any contact can name a document anything, header-breaking CR/LF included."""
    with app.app_context():
        stored = message_inbound(
            shop,
            wa_id="3EB0NAMEDWITHNEWLINES",
            sender=CONTACT,
            text="",
            at=datetime.now(UTC),
            kind="document",
            details={"fileName": "a\r\nX-Injected: 1.pdf", "mimetype": PDF_TYPE},
            media=PDF,
        )
        message_id = stored.id
    message = client.get(f"/api/messages/{message_id}", headers=account.headers).get_json()
    assert message["content"]["fileName"] == "a X-Injected: 1.pdf"
    with client.get(message["mediaUrl"], headers=account.headers) as served:
        assert served.status_code == 200
        assert served.data == PDF
        assert "X-Injected" not in served.headers
        assert served.headers["Content-Disposition"] == 'attachment; filename="a X-Injected: 1.pdf"'


def test_a_name_stored_with_line_breaks_is_served_clean(app, client, account, shop):
    """A message kept before names were cleaned still downloads (a 200, not a 500)."""
    message = _arrive(client, account, shop, MEDIA[3][1])
    with app.app_context():
        row = db.session.get(Message, message["messageId"])
        row.payload = {**row.payload, "filename": "b\r\nSet-Cookie: x=1.pdf"}
        db.session.commit()
    with client.get(message["mediaUrl"], headers=account.headers) as served:
        assert served.status_code == 200
        assert "Set-Cookie" not in served.headers
        assert "\n" not in served.headers["Content-Disposition"]


def test_location_contact_poll_and_replies_arrive_with_their_details(client, account, shop):
    place = _arrive(client, account, shop, {"location": {"latitude": 12.97, "longitude": 77.59, "name": "Gate 2"}})
    assert (place["type"], place["message"]) == ("location", "Gate 2")
    assert place["content"]["location"]["latitude"] == 12.97
    card = _arrive(client, account, shop, {"contact": {"fullName": "Ravi", "phoneNumber": "919800000001"}})
    assert (card["type"], card["content"]["contact"]["phone"]) == ("contact", "919800000001")
    poll = _arrive(client, account, shop, {"poll": {"question": "Open Sunday?", "options": ["Yes", "No"]}})
    assert (poll["type"], poll["content"]["poll"]["options"]) == ("poll", ["Yes", "No"])
    reply = _arrive(client, account, shop, {"message": "Yes please", "quoted": place["messageId"]})
    assert reply["content"]["quotedWaId"] == place["waMessageId"]


def test_a_reaction_is_recorded_on_its_message_and_pushed_live(app, client, account, shop):
    sent = client.post(
        f"/api/sessions/{shop}/send", json={"to": CONTACT, "message": "Your order shipped"}, headers=account.headers
    ).get_json()
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    inbound = f"/api/simulator/sessions/{shop}/inbound"
    client.post(
        inbound,
        json={"from": CONTACT, "reaction": {"messageId": sent["messageId"], "emoji": "🙏"}},
        headers=account.headers,
    )

    def reactions() -> dict:
        message = client.get(f"/api/messages/{sent['messageId']}", headers=account.headers).get_json()
        return (message.get("content") or {}).get("reactions")

    assert wait_for(reactions, message="the reaction") == {CONTACT: "🙏"}
    # The live event follows the stored reaction: wait for it too.
    pushed = wait_for(lambda: [p["args"][0] for p in socket.get_received() if p["name"] == "message_reaction"])
    assert pushed and (pushed[-1]["messageId"], pushed[-1]["emoji"]) == (sent["messageId"], "🙏")
    assert _inbound(client, account) == 0  # a reaction is not a message of its own

    client.post(
        inbound,
        json={"from": CONTACT, "reaction": {"messageId": sent["messageId"], "emoji": ""}},
        headers=account.headers,
    )
    wait_for(lambda: reactions() == {}, message="the reaction taken back")


def test_inbound_kinds_are_streamed_on_socketio(app, client, account, shop):
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    _arrive(client, account, shop, {"image": data_url(PNG, "image/png")})
    # Socket.IO's own name "message" reaches the test client with its data unwrapped.
    [event] = wait_for(lambda: [p["args"] for p in socket.get_received() if p["name"] == "message"])
    assert (event["type"], event["content"]["mimetype"]) == ("image", "image/png")


def test_a_text_message_has_no_media(client, account, shop):
    message = _arrive(client, account, shop, {"message": "hello"})
    assert "mediaUrl" not in message
    response = client.get(f"/api/messages/{message['messageId']}/media", headers=account.headers)
    assert (response.status_code, response.get_json()["code"]) == (404, "MEDIA_NOT_FOUND")
