"""The self-hosted gateway's API, served at /api/v1 (docs/reference/selfhosted-gateway-api.txt).

Its users authenticate account routes with a personal access token in `X-API-Token` and
session routes with a session key as a Bearer token; on wagate those are an API key not
restricted to sessions and an API key restricted to one session. Each example is sent as
its document writes it, with the base URL and key swapped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from blueprints.contract.wiring import openapi_path
from blueprints.selfhosted.contract import selfhosted
from tests import test_openapi_fuzz as fuzz
from tests.dashboard import DashboardUser
from tests.fixtures import PNG, data_url
from tests.helpers import wait_for
from tests.live import ROOT, embedded_server

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


@pytest.mark.parametrize("config_overrides", [{"API_RATE_LIMIT": "2 per 15 minutes"}])
def test_too_many_requests_are_rate_limited_with_retry_after(client, pat):
    for _ in range(2):
        assert client.get(f"{BASE}/whatsapp-sessions", headers=pat).status_code == 200
    response = client.get(f"{BASE}/whatsapp-sessions", headers=pat)
    _error(response, "RATE_LIMITED", 429)
    assert int(response.headers["Retry-After"]) > 0


def test_a_bad_session_body_is_a_validation_error(client, pat):
    error = _error(client.post(f"{BASE}/whatsapp-sessions", json={"name": 5}, headers=pat), "VALIDATION_ERROR", 422)
    assert error["field"] == "name"
    response = client.post(f"{BASE}/whatsapp-sessions", data="{", headers=pat | {"Content-Type": "application/json"})
    assert _error(response, "VALIDATION_ERROR", 422)["reason"] == "INVALID_JSON"


def test_every_route_of_the_dialect_is_in_its_document(app):
    document = selfhosted.document(app)
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = {
        (method, openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("selfhosted.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == documented and len(routes) == 19


def test_its_document_is_served_and_linked(client):
    document = client.get(f"{BASE}/selfhosted/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://localhost/api/v1"}]
    assert "/whatsapp-sessions/{sessionId}/qrcode" in document["paths"]
    assert set(document["components"]["securitySchemes"]) == {"sessionKey", "personalToken"}
    page = client.get("/docs/selfhosted").get_data(as_text=True)
    assert f'data-spec-url="{BASE}/selfhosted/openapi.json"' in page
    assert 'href="/docs/selfhosted"' in client.get("/docs").get_data(as_text=True)


# -- send-message -------------------------------------------------------------------------------


# The document's "1234567890" is a placeholder, not a number of any country: its users put a
# real one there (and get a 422 for that one, see below).
TO = "14155551234"


def _type(client, account, message_id: str) -> str:
    return client.get(f"/api/messages/{message_id}", headers=account.headers).get_json()["type"]


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"to": TO, "text": "Hello from the API!"}, "text"),
        ({"to": TO, "image": {"url": data_url(PNG), "caption": "Optional"}}, "image"),
        (
            {
                "to": TO,
                "location": {"latitude": 37.7749, "longitude": -122.4194, "name": "San Francisco"},
            },
            "location",
        ),
        ({"to": TO, "contact": {"fullName": "John Doe", "phoneNumber": "+1234567890"}}, "contact"),
        ({"to": "+14155551234", "poll": {"question": "Lunch?", "options": ["Pizza", "Sushi"]}}, "poll"),
        ({"to": TO, "image": {"url": data_url(PNG)}, "viewOnce": True}, "image"),
        ({"to": TO, "text": "Hi @14155551234", "mentions": ["14155551234"]}, "text"),
    ],
)
def test_send_message_detects_the_type_from_the_payload(client, account, runtime, session_key, payload, kind):
    response = client.post(f"{BASE}/send-message", json=payload, headers=session_key)
    assert response.status_code in (200, 202), response.get_json()
    body = response.get_json()
    assert body["messageId"] and body["status"] in ("sent", "queued", "delivered")
    assert _type(client, account, body["messageId"]) == kind


def test_a_reply_quotes_the_message_it_answers(client, account, runtime, session_key):
    first = client.post(f"{BASE}/send-message", json={"to": TO, "text": "Hi"}, headers=session_key)
    quoted = {"to": TO, "text": "Replying", "quoted": first.get_json()["messageId"]}
    response = client.post(f"{BASE}/send-message", json=quoted, headers=session_key)
    assert response.status_code in (200, 202), response.get_json()


def test_a_test_session_key_simulates_its_sends(client, account, runtime, shop):
    key = _key(client, account, mode="test", sessionIds=[shop])
    body = {"to": TO, "text": "Hello from the API!"}
    response = client.post(f"{BASE}/send-message", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["simulated"] is True and response.get_json()["messageId"].startswith("sim_")


def test_a_personal_token_names_the_session_in_the_query(client, runtime, pat, shop):
    body = {"to": TO, "text": "Hello"}
    error = _error(client.post(f"{BASE}/send-message", json=body, headers=pat), "VALIDATION_ERROR", 422)
    assert error["field"] == "sessionId"
    response = client.post(f"{BASE}/send-message?sessionId={shop}", json=body, headers=pat)
    assert response.status_code in (200, 202), response.get_json()
    _error(client.post(f"{BASE}/send-message?sessionId=nope", json=body, headers=pat), "SESSION_NOT_FOUND", 404)


def test_a_bad_send_is_a_validation_error(client, runtime, session_key):
    error = _error(client.post(f"{BASE}/send-message", json={"to": TO}, headers=session_key), "VALIDATION_ERROR", 422)
    assert error["field"] == "text"
    both = {"to": TO, "image": {"url": data_url(PNG)}, "location": {"latitude": 1, "longitude": 2}}
    _error(client.post(f"{BASE}/send-message", json=both, headers=session_key), "VALIDATION_ERROR", 422)
    _error(
        client.post(f"{BASE}/send-message", json={"to": "1234567890", "text": "x"}, headers=session_key),
        "VALIDATION_ERROR",
        422,
    )


def test_a_disconnected_session_is_session_disconnected(client, runtime, pat, session_key, shop):
    assert client.post(f"{BASE}/whatsapp-sessions/{shop}/disconnect", headers=pat).status_code == 200
    wait_for(lambda: client.get(f"{BASE}/whatsapp-sessions/{shop}", headers=pat).get_json()["status"] != "connected")
    response = client.post(f"{BASE}/send-message", json={"to": TO, "text": "Hi"}, headers=session_key)
    _error(response, "SESSION_DISCONNECTED", 409)


# -- contacts and on-whatsapp -------------------------------------------------------------------


def test_contacts_are_upserted_listed_and_shown(client, runtime, session_key):
    body = {"phone": "+14155551234", "name": "John Doe", "tags": ["vip"], "notes": "Prefers mornings"}
    created = client.put(f"{BASE}/contacts", json=body, headers=session_key)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["contact"]["name"] == "John Doe"
    changed = client.put(f"{BASE}/contacts", json={"phone": "14155551234", "name": "John"}, headers=session_key)
    assert changed.status_code == 200 and changed.get_json()["contact"]["tags"] == ["vip"]
    listed = client.get(f"{BASE}/contacts", headers=session_key).get_json()
    assert [c["name"] for c in listed["contacts"] if c["phone"] == "14155551234"] == ["John"]
    shown = client.get(f"{BASE}/contacts/14155551234", headers=session_key)
    assert shown.status_code == 200 and shown.get_json()["contact"]["notes"] == "Prefers mornings"
    _error(client.get(f"{BASE}/contacts/14155550000", headers=session_key), "NOT_FOUND", 404)


def test_bad_contacts_are_validation_errors(client, runtime, session_key):
    for body, field in (({"name": "No phone"}, "phone"), ({"phone": "14155551234", "colour": "red"}, "colour")):
        error = _error(client.put(f"{BASE}/contacts", json=body, headers=session_key), "VALIDATION_ERROR", 422)
        assert error["field"] == field


def test_on_whatsapp_answers_for_a_number(client, runtime, session_key):
    yes = client.get(f"{BASE}/on-whatsapp/+14155551234", headers=session_key).get_json()
    assert (yes["phone"], yes["exists"], yes["waId"]) == ("14155551234", True, "14155551234@s.whatsapp.net")
    no = client.get(f"{BASE}/on-whatsapp/14155550000", headers=session_key).get_json()
    assert (no["exists"], no["waId"]) == (False, None)
    _error(client.get(f"{BASE}/on-whatsapp/not-a-number", headers=session_key), "VALIDATION_ERROR", 422)


# -- groups -------------------------------------------------------------------------------------


def test_groups_are_created_listed_shown_changed_and_left(client, runtime, session_key):
    body = {"name": "Wholesale buyers", "participants": ["+14155551234", "14155552222"]}
    created = client.post(f"{BASE}/groups", json=body, headers=session_key)
    assert created.status_code == 201, created.get_json()
    jid = created.get_json()["group"]["id"]
    assert jid.endswith("@g.us")
    assert [g["id"] for g in client.get(f"{BASE}/groups", headers=session_key).get_json()["groups"]] == [jid]
    assert client.get(f"{BASE}/groups/{jid}", headers=session_key).get_json()["group"]["name"] == "Wholesale buyers"
    url = f"{BASE}/groups/{jid}/participants"
    assert client.get(url, headers=session_key).get_json()["count"] == 3
    added = client.post(f"{url}/add", json={"participants": ["14155553333", "14155550000"]}, headers=session_key)
    assert [(r["phone"], r["ok"]) for r in added.get_json()["results"]] == [
        ("14155553333", True),
        ("14155550000", False),
    ]
    removed = client.post(f"{url}/remove", json={"participants": ["14155552222"]}, headers=session_key)
    assert removed.get_json()["results"] == [{"phone": "14155552222", "ok": True}]
    assert client.get(url, headers=session_key).get_json()["count"] == 3
    left = client.post(f"{BASE}/groups/{jid}/leave", headers=session_key)
    assert left.status_code == 200 and left.get_json()["groupId"] == jid
    _error(client.get(f"{BASE}/groups/{jid}", headers=session_key), "NOT_FOUND", 404)


def test_bad_groups_are_validation_errors(client, runtime, session_key):
    for body, field in (({"participants": ["14155551234"]}, "name"), ({"name": "No one"}, "participants")):
        error = _error(client.post(f"{BASE}/groups", json=body, headers=session_key), "VALIDATION_ERROR", 422)
        assert error["field"] == field
    _error(client.get(f"{BASE}/groups/not-a-group", headers=session_key), "VALIDATION_ERROR", 422)
    response = client.post(f"{BASE}/groups/123456789@g.us/participants/promote", json={}, headers=session_key)
    _error(response, "VALIDATION_ERROR", 422)


# -- against `python app.py`: the document's own examples, and schemathesis ------------------

# The document's fetch example, exactly as it writes it (its base URL and key swapped in).
FETCH_TEXT = """const res = await fetch("https://yourdomain.com/api/v1/send-message", {
  method: "POST",
  headers: {
    "Content-Type": "application/json",
    "Authorization": "Bearer YOUR_SESSION_API_KEY",
  },
  body: JSON.stringify({
    to: "1234567890",
    text: "Hello from the API!",
  }),
});
const data = await res.json();
console.log(data.messageId);
"""
# Its payload examples, as its users send them from Python.
PAYLOADS = {
    "image": {"to": "1234567890", "image": {"url": "https://...", "caption": "Optional"}},
    "location": {
        "to": "1234567890",
        "location": {"latitude": 37.7749, "longitude": -122.4194, "name": "San Francisco"},
    },
    "contact": {"to": "1234567890", "contact": {"fullName": "John Doe", "phoneNumber": "+1234567890"}},
}


def _pat_and_session_key(base_url: str, tmp_data: Path) -> dict:
    """An Enterprise owner with a paired session, a group and a message; its personal access
    token, session key, and spares for the destructive routes."""
    anonymous = fuzz.Api(base_url)
    fuzz._register(anonymous, "first-admin@example.com")
    email = "gateway@example.com"
    token = fuzz._register(anonymous, email)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "users", "set-plan", email, "enterprise"],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
        | {"DATA_DIR": str(tmp_data)},
        check=True,
        capture_output=True,
    )
    api = fuzz.Api(base_url, token)
    session_id = api("POST", "/api/sessions", 201, json={"name": "Gateway"})["sessionId"]
    fuzz._pair(api, session_id)
    spare = api("POST", "/api/sessions", 201, json={"name": "Spare"})["sessionId"]
    doomed = api("POST", "/api/sessions", 201, json={"name": "Doomed"})["sessionId"]
    members = {"participants": ["919876543210"]}
    group = api("POST", f"/api/sessions/{session_id}/groups", 201, json={"name": "Gateway", **members})
    doomed_group = api("POST", f"/api/sessions/{session_id}/groups", 201, json={"name": "Doomed", **members})
    message = api("POST", f"/api/sessions/{session_id}/send", (200, 202), json={"to": "919876543210", "text": "Hi"})
    poll = {"question": "Lunch?", "options": ["Yes", "No"]}
    poll_message = api(
        "POST", f"/api/sessions/{session_id}/send", (200, 202), json={"to": "919876543210", "poll": poll}
    )
    pat = api("POST", "/api/keys", 201, json={"name": "personal"})["key"]
    session_key = api("POST", "/api/keys", 201, json={"name": "session", "sessionIds": [session_id]})["key"]
    return {
        "baseUrl": base_url,
        "pat": pat,
        "sessionKey": session_key,
        "session": session_id,
        "spareSession": spare,
        "doomedSession": doomed,
        "group": group["group"]["id"],
        "doomedGroup": doomed_group["group"]["id"],
        "message": message["messageId"],
        "poll": poll_message["messageId"],
        "pollOptions": poll["options"],
        # What the native run's hooks (tests/openapi_fuzz_hooks.py) read but this dialect never uses.
        "apiKeyId": "",
        "spareApiKeyId": "",
        "webhook": "",
        "spareWebhook": "",
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    receiver = fuzz.Receiver()
    data_dir = tmp_path_factory.mktemp("selfhosted")
    environment = {
        "API_RATE_LIMIT": "1000000 per 15 minutes",
        "ALLOW_PRIVATE_URLS": "true",
        "SEND_WAIT_SECONDS": "3",
        "SIMULATOR_TIMEOUT_SECONDS": "1",
        "SIMULATOR_RECEIPT_SECONDS": "0.2",
        "GROUP_CALL_WAIT_SECONDS": "5",
        "NUMBER_CHECK_WAIT_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
        "PACE_MIN_GAP_SECONDS": "0",
        "PACE_JITTER_SECONDS": "0",
        "PACE_PER_MINUTE": "1000000",
        "PACE_PER_DAY": "1000000",
        "PACE_WARMUP": "",
        "GOVERNOR_MIN_SAMPLE": "1000000",
        "GOVERNOR_MAX_COLD_PER_DAY": "0",
    }
    try:
        with embedded_server(data_dir, **environment) as base_url:
            context = _pat_and_session_key(base_url, data_dir) | {"receiver": receiver.url}
            context |= {
                name: base64.b64encode(fuzz.MEDIA[kind][1]).decode()
                for name, kind in (("png", "image"), ("mp4", "video"), ("ogg", "audio"), ("pdf", "document"))
            }
            yield context
    finally:
        receiver.close()


def _swap(text: str, gateway: dict) -> str:
    """The document's text with only the base URL, the key and the placeholder number changed."""
    text = text.replace("https://yourdomain.com/api/v1", gateway["baseUrl"] + BASE)
    return text.replace("YOUR_SESSION_API_KEY", gateway["sessionKey"]).replace("1234567890", TO)


@pytest.mark.live_server
def test_the_documents_fetch_example_runs_unchanged_in_node(gateway):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--input-type=module", "-e", _swap(FETCH_TEXT, gateway)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    message_id = result.stdout.strip()
    assert message_id and message_id != "undefined"


@pytest.mark.live_server
@pytest.mark.parametrize("kind", PAYLOADS)
def test_the_documents_payloads_send_from_python(gateway, kind):
    payload = json.loads(_swap(json.dumps(PAYLOADS[kind]), gateway).replace('"+' + TO, '"+1234567890'))
    if kind == "image":  # "https://..." is the document's placeholder for a picture's URL
        payload["image"]["url"] = f"{gateway['receiver']}/media/image"
    response = requests.post(
        f"{gateway['baseUrl']}{BASE}/send-message",
        headers={"Authorization": f"Bearer {gateway['sessionKey']}"},
        json=payload,
        timeout=30,
    )
    assert response.status_code in (200, 202), response.text
    assert response.json()["messageId"]
    # The same session's routes with a personal access token, as the document's account routes.
    listed = requests.get(
        f"{gateway['baseUrl']}{BASE}/whatsapp-sessions", headers={"X-API-Token": gateway["pat"]}, timeout=30
    )
    assert gateway["session"] in [s["sessionId"] for s in listed.json()["sessions"]]


def _schemathesis_config(gateway: dict, auth: str) -> str:
    credentials = (
        f'[auth.openapi.sessionKey]\nbearer = "{gateway["sessionKey"]}"\n'
        if auth == "session key"
        else f'[auth.openapi.personalToken]\napi_key = "{gateway["pat"]}"\n'
    )
    # A personal access token names the session in the query; a session key needs nothing.
    query = f'"query.sessionId" = "{gateway["session"]}"\n' if auth == "personal token" else ""
    return f"""
base-url = "{gateway["baseUrl"]}{BASE}"
hooks = "tests.openapi_fuzz_hooks"
workers = 2
request-timeout = 20

{credentials}
[parameters]
"path.sessionId" = "{gateway["session"]}"
"path.groupId" = "{gateway["group"]}"
{query}
[[operations]]
include-operation-id = "deleteSession"
parameters = {{ "path.sessionId" = "{gateway["doomedSession"]}" }}

[[operations]]
include-operation-id = "disconnectSession"
parameters = {{ "path.sessionId" = "{gateway["spareSession"]}" }}

[[operations]]
include-operation-id = "leaveGroup"
parameters = {{ "path.groupId" = "{gateway["doomedGroup"]}" }}
"""


@pytest.mark.fuzz
@pytest.mark.live_server
@pytest.mark.parametrize("auth", ["session key", "personal token"])
def test_schemathesis_finds_nothing_in_its_document(gateway, tmp_path, auth):
    config, report = tmp_path / "schemathesis.toml", tmp_path / "report.json"
    config.write_text(_schemathesis_config(gateway, auth))
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run"]
    command += [f"{gateway['baseUrl']}{BASE}/selfhosted/openapi.json", "--phases", "examples,coverage,fuzzing"]
    command += ["--max-examples", "10", "--seed", os.environ.get("WAGATE_FUZZ_SEED", "20261205")]
    command += ["--report", "json", "--report-json-path", str(report)]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "WAGATE_FUZZ_CONTEXT": json.dumps(gateway), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-3000:]
    outcome = json.loads(report.read_text())
    assert outcome["failures"] == [] and outcome["errors"] == []
    document = requests.get(f"{gateway['baseUrl']}{BASE}/selfhosted/openapi.json", timeout=30).json()
    documented = sum(len(item) for item in document["paths"].values()) - 1
    assert outcome["operations"]["tested"] == documented


# -- the session page's session key -------------------------------------------------------------


def test_the_session_page_makes_a_session_key_shown_once(client, account, runtime, shop):
    user = DashboardUser(client, account, landing=f"/sessions/{shop}")
    page = client.get(f"/sessions/{shop}").get_data(as_text=True)
    assert "Create a session key" in page
    fragment = user.htmx("POST", f"/sessions/{shop}/session-key").get_data(as_text=True)
    key = re.search(r"wag_live_[0-9a-f]{64}", fragment).group(0)
    assert "shown only this once" in fragment
    assert key not in client.get("/keys").get_data(as_text=True)
    sent = client.post(
        f"{BASE}/send-message", json={"to": TO, "text": "Hi"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert sent.status_code in (200, 202), sent.get_json()
    listed = client.get("/api/keys", headers=account.headers).get_json()["keys"]
    assert [k["sessionIds"] for k in listed] == [[shop]]
