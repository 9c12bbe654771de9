"""Wamux's API on wagate: its documented examples sent as Wamux's users write them, with only
the base URL and the key changed (a wagate API key as the Bearer token)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
import requests

from blueprints.contract.wiring import openapi_path
from tests import dialect_fuzz
from tests.fixtures import JPEG, OGG
from tests.helpers import decode_qr, http_server, pair_session, wait_for
from tests.live import embedded_server
from tests.test_event_stream import SseClient

# The live server and its context, for the schemathesis run.
live, context = dialect_fuzz.live, dialect_fuzz.context

# The documents' examples, as written.
QUICK_START = {"to": "+237612345678", "message": "Hello!"}
TEXT = {"to": "+237612345678", "message": "Hello from WhatsApp API!"}
MEDIA = {
    "to": "+237612345678",
    "mediaUrl": "https://example.com/image.jpg",
    "mediaType": "image",
    "caption": "Check this out!",
}
AUDIO = {"to": "+237612345678", "audioUrl": "https://example.com/voice.ogg", "ptt": True}


class _Files(BaseHTTPRequestHandler):
    """example.com's files, on loopback: /image.jpg and /voice.ogg."""

    FILES = {"/image.jpg": ("image/jpeg", JPEG), "/voice.ogg": ("audio/ogg", OGG)}

    def do_GET(self) -> None:
        mimetype, data = self.FILES.get(self.path, ("text/plain", b"missing"))
        self.send_response(200 if self.path in self.FILES else 404)
        self.send_header("Content-Type", mimetype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def config_overrides() -> dict:
    return {"ALLOW_PRIVATE_URLS": True}


@pytest.fixture
def files():
    with http_server(_Files) as url:
        yield url


def _key(client, account, **body) -> str:
    """A key "generated from the dashboard" (the native API, as the dashboard does)."""
    response = client.post("/api/keys", json={"name": "wamux", **body}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["key"]


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


# -- messages -----------------------------------------------------------------------------------


def test_the_quick_start_sends_from_the_only_connected_session(client, shop, account, runtime):
    key = _key(client, account)
    response = client.post("/api/v1/messages", json=QUICK_START, headers=_bearer(key))
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert (body["toPhone"], body["type"], body["status"], body["sessionId"]) == (
        "+237612345678",
        "text",
        "pending",
        shop,
    )
    sent = wait_for(
        lambda: (
            (m := client.get(f"/api/v1/messages/{body['id']}", headers=_bearer(key)).get_json())["status"] == "read"
            and m
        )
    )
    assert (sent["toPhone"], sent["message"], sent["direction"]) == ("237612345678", "Hello!", "outbound")
    assert sent["sentAt"] and sent["deliveredAt"]
    outbox = runtime.engine_host.engine.outbox(shop)
    assert [(entry["kind"], entry["text"]) for entry in outbox] == [("text", "Hello!")]


def test_the_text_example_answers_as_documented(client, shop, account, runtime):
    response = client.post("/api/v1/messages", json=TEXT, headers=_bearer(_key(client, account)))
    assert response.status_code == 202
    assert set(response.get_json()) >= {"id", "toPhone", "type", "status"}
    assert response.get_json()["status"] == "pending"


def test_the_media_and_audio_examples_send_an_image_and_a_voice_note(client, shop, account, runtime, files):
    key = _key(client, account)
    media = client.post("/api/v1/messages/media", json=MEDIA | {"mediaUrl": f"{files}/image.jpg"}, headers=_bearer(key))
    assert media.status_code == 202, media.get_json()
    assert (media.get_json()["type"], media.get_json()["status"]) == ("image", "pending")
    audio = client.post("/api/v1/messages/audio", json=AUDIO | {"audioUrl": f"{files}/voice.ogg"}, headers=_bearer(key))
    assert audio.status_code == 202, audio.get_json()
    assert audio.get_json()["type"] == "ptt"
    music = client.post(
        "/api/v1/messages/audio",
        json=AUDIO | {"audioUrl": f"{files}/voice.ogg", "ptt": False},
        headers=_bearer(key),
    )
    assert music.get_json()["type"] == "audio"
    wait_for(lambda: len(runtime.engine_host.engine.outbox(shop)) == 3)
    outbox = runtime.engine_host.engine.outbox(shop)
    assert [(entry["kind"], entry["text"]) for entry in outbox] == [
        ("image", "Check this out!"),
        ("ptt", ""),
        ("audio", ""),
    ]


def test_the_message_list_pages_newest_first(client, shop, account, runtime):
    key = _key(client, account)
    ids = [
        client.post("/api/v1/messages", json=QUICK_START | {"message": f"n{n}"}, headers=_bearer(key)).get_json()["id"]
        for n in range(3)
    ]
    page = client.get("/api/v1/messages?limit=2", headers=_bearer(key)).get_json()
    assert [m["id"] for m in page["data"]] == ids[:0:-1] and page["total"] == 3 and page["nextCursor"] == ids[1]
    rest = client.get(f"/api/v1/messages?limit=2&cursor={page['nextCursor']}", headers=_bearer(key)).get_json()
    assert [m["id"] for m in rest["data"]] == ids[:1] and rest["nextCursor"] is None


def test_a_test_key_simulates_the_send(client, shop, account):
    response = client.post("/api/v1/messages", json=QUICK_START, headers=_bearer(_key(client, account, mode="test")))
    assert response.status_code == 202
    assert response.get_json()["id"].startswith("sim_") and response.get_json()["status"] == "sent"


# -- which session sends ------------------------------------------------------------------------


def test_a_key_bound_to_a_session_sends_from_it(client, make_account, runtime):
    account = make_account(plan="growth")
    first = pair_session(client, account)
    second = pair_session(client, account, phone="919812345670")
    key = _key(client, account, sessionIds=[second])
    response = client.post("/api/v1/messages", json=QUICK_START, headers=_bearer(key))
    assert response.status_code == 202 and response.get_json()["sessionId"] == second != first


def test_with_two_connected_sessions_the_message_must_say_which(client, make_account, runtime):
    account = make_account(plan="growth")
    first = pair_session(client, account)
    second = pair_session(client, account, phone="919812345670")
    key = _key(client, account)
    refused = client.post("/api/v1/messages", json=QUICK_START, headers=_bearer(key))
    assert refused.status_code == 400
    body = refused.get_json()
    assert (body["statusCode"], body["code"], body["field"]) == (400, "SESSION_REQUIRED", "sessionId")
    assert "2 connected sessions" in body["message"] and "sessionId" in body["message"]
    named = client.post("/api/v1/messages", json=QUICK_START | {"sessionId": first}, headers=_bearer(key))
    assert named.status_code == 202 and named.get_json()["sessionId"] == first != second


def test_a_session_not_connected_is_409(client, account, runtime):
    key = _key(client, account)
    none = client.post("/api/v1/messages", json=QUICK_START, headers=_bearer(key))
    assert none.status_code == 409 and none.get_json()["code"] == "SESSION_NOT_CONNECTED"
    created = client.post("/api/v1/sessions", json={"session_key": "my-session"}, headers=_bearer(key)).get_json()
    refused = client.post("/api/v1/messages", json=QUICK_START, headers=_bearer(key))
    assert refused.status_code == 409
    assert refused.get_json() | {"message": ""} == {
        "statusCode": 409,
        "error": "Session not connected",
        "message": "",
        "code": "SESSION_NOT_CONNECTED",
    }
    assert created["id"] in refused.get_json()["message"]


def test_an_unknown_or_foreign_session_is_404(client, shop, account, make_account):
    stranger_key = _key(client, make_account())
    foreign = client.post("/api/v1/messages", json=QUICK_START | {"sessionId": shop}, headers=_bearer(stranger_key))
    assert foreign.status_code == 404 and foreign.get_json()["code"] == "SESSION_NOT_FOUND"
    assert client.get(f"/api/v1/sessions/{shop}", headers=_bearer(stranger_key)).status_code == 404
    missing = client.get("/api/v1/messages/nope", headers=_bearer(_key(client, account)))
    assert missing.status_code == 404 and missing.get_json()["statusCode"] == 404


def test_a_missing_or_invalid_key_is_401(client):
    missing = client.post("/api/v1/messages", json=QUICK_START)
    assert missing.status_code == 401 and missing.get_json()["statusCode"] == 401
    invalid = client.get("/api/v1/sessions", headers=_bearer("wag_live_" + "x" * 32))
    assert invalid.status_code == 401 and set(invalid.get_json()) >= {"statusCode", "error", "message", "code"}


@pytest.mark.parametrize(
    ("route", "body", "code", "field"),
    [
        ("/api/v1/messages", {"message": "Hi"}, "INVALID_NUMBER", "to"),
        ("/api/v1/messages", {"to": "+237612345678"}, "EMPTY_MESSAGE", "message"),
        ("/api/v1/messages/media", MEDIA | {"mediaType": "hologram"}, "INVALID_FIELD", "mediaType"),
        ("/api/v1/messages/media", {"to": "+237612345678", "mediaType": "image"}, "MISSING_FIELD", "mediaUrl"),
        ("/api/v1/messages/audio", {"to": "+237612345678"}, "MISSING_FIELD", "audioUrl"),
    ],
)
def test_a_bad_send_is_400_naming_the_field(client, shop, account, route, body, code, field):
    response = client.post(route, json=body, headers=_bearer(_key(client, account)))
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert (answer["statusCode"], answer["code"], answer["field"]) == (400, code, field)


@pytest.mark.parametrize("config_overrides", [{"API_RATE_LIMIT": "2 per 15 minutes"}])
def test_past_the_rate_limit_the_answer_is_429(client, account):
    key = _key(client, account)
    answers = [client.get("/api/v1/sessions", headers=_bearer(key)) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].get_json()["statusCode"] == 429 and answers[2].get_json()["code"] == "RATE_LIMITED"
    assert int(answers[2].headers["Retry-After"]) > 0


# -- sessions -----------------------------------------------------------------------------------


def test_sessions_are_created_listed_renamed_and_deleted(client, account, runtime):
    key = _bearer(_key(client, account))
    created = client.post("/api/v1/sessions", json={"session_key": "my-session"}, headers=key)
    assert created.status_code == 201, created.get_json()
    session = created.get_json()
    assert session["session_key"] == "my-session" and session["status"] in ("connecting", "pending")
    listed = client.get("/api/v1/sessions", headers=key).get_json()
    assert [s["id"] for s in listed["data"]] == [session["id"]] and listed["total"] == 1
    renamed = client.patch(f"/api/v1/sessions/{session['id']}", json={"session_key": "support"}, headers=key)
    assert renamed.status_code == 200 and renamed.get_json()["session_key"] == "support"
    assert client.get(f"/api/v1/sessions/{session['id']}", headers=key).get_json()["session_key"] == "support"
    deleted = client.delete(f"/api/v1/sessions/{session['id']}", headers=key)
    assert deleted.status_code == 200 and deleted.get_json() == {"id": session["id"], "deleted": True}
    gone = client.get(f"/api/v1/sessions/{session['id']}", headers=key)
    assert gone.status_code == 404 and gone.get_json()["code"] == "SESSION_NOT_FOUND"


def test_a_session_change_is_checked(client, account, runtime):
    key = _bearer(_key(client, account))
    session = client.post("/api/v1/sessions", json={"session_key": "my-session"}, headers=key).get_json()
    for body in ({}, {"session_key": "   "}, {"session_key": "x" * 101}, {"name": "other"}):
        refused = client.patch(f"/api/v1/sessions/{session['id']}", json=body, headers=key)
        assert refused.status_code == 400 and refused.get_json()["statusCode"] == 400, body


# -- keys ---------------------------------------------------------------------------------------


def test_keys_are_created_listed_and_deleted(client, shop, account):
    key = _bearer(_key(client, account))
    created = client.post("/api/v1/keys", json={"name": "production", "sessionId": shop}, headers=key)
    assert created.status_code == 201, created.get_json()
    new = created.get_json()
    assert new["key"].startswith("wag_live_") and new["sessionId"] == shop and new["name"] == "production"
    listed = client.get("/api/v1/keys", headers=key).get_json()
    assert new["id"] in [k["id"] for k in listed["data"]] and all("key" not in k for k in listed["data"])
    assert client.get("/api/v1/sessions", headers=_bearer(new["key"])).get_json()["total"] == 1
    deleted = client.delete(f"/api/v1/keys/{new['id']}", headers=key)
    assert deleted.status_code == 200 and deleted.get_json() == {"id": new["id"], "deleted": True}
    assert client.get("/api/v1/sessions", headers=_bearer(new["key"])).status_code == 401
    assert new["id"] not in [k["id"] for k in client.get("/api/v1/keys", headers=key).get_json()["data"]]
    assert client.delete("/api/v1/keys/nope", headers=key).status_code == 404


def test_the_document_and_its_page(app, client):
    document = client.get("/docs/wamux/openapi.json").get_json()
    # Every route of the dialect is in its document, and nothing else.
    routes = {
        (method, openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if "wamux" in getattr(app.view_functions[rule.endpoint], "contract_operations", {})
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert document["openapi"] == "3.1.0"
    assert {"/api/v1/sessions", "/api/v1/sessions/{sessionId}/stream", "/api/v1/messages", "/api/v1/keys"} <= set(
        document["paths"]
    )
    assert set(document["paths"]["/api/v1/messages"]["post"]["responses"]) >= {"202", "401", "404", "409", "429"}
    page = client.get("/docs/wamux")
    assert page.status_code == 200 and b"/docs/wamux/openapi.json" in page.data
    assert b'href="/docs/wamux"' in client.get("/docs").data  # listed on the native reference page


# -- against `python app.py`, as a Wamux client would -------------------------------------------


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    with embedded_server(tmp_path_factory.mktemp("wamux"), STREAM_HEARTBEAT_SECONDS="0.5") as url:
        yield url


@pytest.mark.live_server
def test_pairing_from_the_stream_then_the_quick_start(base_url):
    token = requests.post(
        f"{base_url}/api/register", json={"email": "wamux@example.com", "password": "correct horse"}, timeout=10
    ).json()["token"]
    key = requests.post(
        f"{base_url}/api/keys", json={"name": "wamux"}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}

    # 1. Create Session
    created = requests.post(f"{base_url}/api/v1/sessions", json={"session_key": "my-session"}, headers=headers)
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    # 2. Scan QR Code: connect to the SSE stream to receive QR code updates.
    stream = SseClient(f"{base_url}/api/v1/sessions/{session_id}/stream", headers)
    try:
        assert stream.response.status_code == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        qr = stream.next("qr")
        assert qr["sessionId"] == session_id and qr["qr"].startswith("data:image/png;base64,")
        scanned = requests.post(base_url + urlsplit(decode_qr(qr["qr"])).path, json={"phone": "919812345678"})
        assert scanned.status_code == 200
        connected = stream.next("connected")
        assert (connected["sessionId"], connected["phone"]) == (session_id, "919812345678")

        # 3. Send Messages: the quick start, as written (base URL and key swapped).
        sent = requests.post(
            f"{base_url}/api/v1/messages",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            data='{"to": "+237612345678", "message": "Hello!"}',
            timeout=10,
        )
        assert sent.status_code == 202, sent.text
        assert sent.json() | {"id": ""} == {
            "id": "",
            "toPhone": "+237612345678",
            "type": "text",
            "status": "pending",
            "sessionId": session_id,
        }

        # The phone unlinks the device: the stream says so.
        requests.post(f"{base_url}/api/sessions/{session_id}/logout", headers=headers, timeout=10)
        error = stream.next("error")
        assert error["sessionId"] == session_id and error["message"]
    finally:
        stream.close()


@pytest.mark.live_server
def test_a_late_client_gets_the_current_qr_code_first(base_url):
    token = requests.post(
        f"{base_url}/api/register", json={"email": "late@example.com", "password": "correct horse"}, timeout=10
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    session_id = requests.post(f"{base_url}/api/v1/sessions", json={}, headers=headers, timeout=10).json()["id"]
    wait_for(
        lambda: requests.get(f"{base_url}/api/v1/sessions/{session_id}", headers=headers).json()["status"] == "pending"
    )
    stream = SseClient(f"{base_url}/api/v1/sessions/{session_id}/stream", headers)
    try:
        assert stream.next("qr", timeout=5)["qr"].startswith("data:image/png;base64,")
    finally:
        stream.close()
    assert requests.get(f"{base_url}/api/v1/sessions/{session_id}/stream", timeout=5).status_code == 401


@pytest.mark.fuzz
@pytest.mark.live_server
def test_schemathesis_finds_nothing_in_the_document(context, tmp_path):
    config = f"""
[auth.openapi.bearerAuth]
bearer = "{context["apiKey"]}"

[parameters]
"path.sessionId" = "{context["session"]}"
"path.messageId" = "{context["message"]}"
"path.keyId" = "{context["apiKeyId"]}"

[[operations]]
include-operation-id = "deleteSession"
parameters = {{ "path.sessionId" = "{context["doomedSession"]}" }}

[[operations]]
include-operation-id = "deleteKey"
parameters = {{ "path.keyId" = "{context["spareApiKeyId"]}" }}

[[operations]]
include-operation-id = "streamSession"
request-timeout = 1
max-stream-events = 1
"""
    outcome = dialect_fuzz.fuzz_dialect(context, tmp_path, "/docs/wamux/openapi.json", config)
    assert outcome["test_cases"]["generated"] > 500
