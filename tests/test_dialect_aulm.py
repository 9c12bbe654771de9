"""aulm's API on wagate: its documented examples as aulm's users write them, with only the
base URL and the key changed (a wagate key in place of an alm_sk_… one), every row of its
error-code index and refund matrix the simulator can drive, and its headers.

The live run of the same examples (with curl) and schemathesis on aulm's document are in
tests/test_dialect_aulm_live.py.
"""

from __future__ import annotations

import base64
import io
import re
import shlex
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import update

from extensions import db
from models import ApiKey, User
from tests.helpers import http_server, pair_session, wait_for

DOC = Path(__file__).resolve().parent.parent / "docs" / "reference" / "aulm-api.txt"
AULM = "https://api.aulm.io"
DOC_SESSION = "f1e2d3c4-5678-4abc-9def-0123456789ab"
DOC_IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg..."

# The document's curl examples, exactly as it writes them (its text joins their lines with ' \ ').
QUICK_START = (
    "curl -X POST https://api.aulm.io/v1/messages/send-text \\ "
    '-H "Authorization: Bearer alm_sk_test_..." \\ -H "Content-Type: application/json" \\ '
    '-d \'{"session_id":"<SESSION_ID>","to":"+14155551234","body":"Hello!"}\''
)
SEND_TEXT = (
    "curl -X POST https://api.aulm.io/v1/messages/send-text \\ "
    '-H "Authorization: Bearer $AULM_API_KEY" \\ -H "Content-Type: application/json" \\ '
    '-d \'{ "session_id": "f1e2d3c4-5678-4abc-9def-0123456789ab", "to": "+14155551234", '
    '"body": "Hello from aulm!"}\''
)
SEND_IMAGE = (
    "curl -X POST https://api.aulm.io/v1/messages/send-image \\ "
    '-H "Authorization: Bearer $AULM_API_KEY" \\ -H "Content-Type: application/json" \\ '
    '-d \'{ "session_id": "f1e2d3c4-5678-4abc-9def-0123456789ab", "to": "+14155551234", '
    '"image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg...", "caption": "Receipt attached"}\''
)
STATUS = 'curl https://api.aulm.io/v1/sessions/<SESSION_ID>/status \\ -H "Authorization: Bearer $AULM_API_KEY"'
EXAMPLES = {"quick start": QUICK_START, "send-text": SEND_TEXT, "send-image": SEND_IMAGE, "status": STATUS}


def png_data_url() -> str:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (7, 94, 84)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def as_sent(example: str, base_url: str, key: str, session_id: str) -> list[str]:
    """A curl example as its user runs it on wagate: the base URL, the key and their session's
    id changed, and a real image where the document's is cut short ("…")."""
    command = example.replace(" \\ ", " ").replace(AULM, base_url)
    command = command.replace("alm_sk_test_...", key).replace("$AULM_API_KEY", key)
    command = command.replace("<SESSION_ID>", session_id).replace(DOC_SESSION, session_id)
    return shlex.split(command.replace(DOC_IMAGE, png_data_url()))


def curl_request(words: list[str]) -> tuple[str, str, dict[str, str], str | None]:
    """(method, URL, headers, body) of a curl command's words."""
    method, url, headers, body = "GET", None, {}, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(rest)
            method = "POST" if method == "GET" else method
        else:
            url = word
    return method, url, headers, body


def run_example(client, example: str, key: str, session_id: str):
    method, url, headers, body = curl_request(as_sent(example, "http://localhost", key, session_id))
    return client.open(url.removeprefix("http://localhost"), method=method, headers=headers, data=body)


@pytest.fixture
def config_overrides():
    # One quick retry, so a transient failure settles within the request's wait.
    return {"SEND_RETRY_DELAYS": [0.1], "OVERLOAD_BACKOFF_SECONDS": 3}


@pytest.fixture
def shop_owner(starter):
    """A Starter account: a plan with a daily quota of 1000 messages."""
    return starter


def make_key(client, account, **body) -> dict:
    response = client.post("/api/keys", json={"name": "aulm", **body}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def live_key(client, shop_owner) -> str:
    return make_key(client, shop_owner)["key"]


@pytest.fixture
def test_key(client, shop_owner) -> str:
    return make_key(client, shop_owner, mode="test")["key"]


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def send_text(client, key: str, session_id: str, to: str = "+14155551234", body: str = "Hello!"):
    return client.post(
        "/v1/messages/send-text", json={"session_id": session_id, "to": to, "body": body}, headers=bearer(key)
    )


def quota_used(client, account) -> int:
    return client.get("/api/quota", headers=account.headers).get_json()["quota"]["used"]


def fault(client, account, session_id: str, name: str, on: bool = True) -> None:
    response = client.put(f"/api/simulator/faults?sessionId={session_id}", json={name: on}, headers=account.headers)
    assert response.status_code == 200, response.get_json()


def assert_error(response, status: int, code: str) -> None:
    assert (response.status_code, response.get_json()) == (
        status,
        {"error": {"code": code, "message": response.get_json()["error"]["message"]}},
    ), response.get_json()
    assert response.get_json()["error"]["message"]
    assert response.headers["x-request-id"]


# -- the documented examples ---------------------------------------------------------------------


def test_the_examples_are_the_documents_own():
    text = DOC.read_text()
    for name, example in EXAMPLES.items():
        assert example in text, name


def test_the_quick_start_sends_with_a_test_key_simulated(client, runtime, shop, test_key):
    response = run_example(client, QUICK_START, test_key, shop)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["data"] == {
        "message_id": body["data"]["message_id"],
        "session_id": shop,
        "to": "+14155551234",
        "status": "sent",
        "simulated": True,
    }
    assert body["data"]["message_id"].startswith("sim_")
    assert response.headers["x-request-id"] == body["request_id"]
    assert runtime.engine_host.engine.outbox(shop) == []  # nothing went to WhatsApp


@pytest.mark.parametrize("example", [SEND_TEXT, SEND_IMAGE], ids=["send-text", "send-image"])
def test_a_send_example_with_a_live_key_sends(client, runtime, shop, shop_owner, live_key, example):
    response = run_example(client, example, live_key, shop)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    sent = body["data"]
    assert (sent["session_id"], sent["to"], sent["status"], sent["simulated"]) == (shop, "+14155551234", "sent", False)
    assert not sent["message_id"].startswith("sim_")
    assert set(body) == {"data", "request_id"}
    assert response.headers["x-request-id"] == body["request_id"]
    [delivered] = runtime.engine_host.engine.outbox(shop)
    assert delivered["to"].startswith("14155551234")
    assert quota_used(client, shop_owner) == 1
    shown = client.get(f"/api/messages/{sent['message_id']}", headers=shop_owner.headers).get_json()
    assert shown["type"] == ("image" if example is SEND_IMAGE else "text")


@pytest.mark.parametrize("kind", ["live", "test"])
def test_the_status_example_answers_connected(client, runtime, shop, live_key, test_key, kind):
    response = run_example(client, STATUS, live_key if kind == "live" else test_key, shop)

    assert response.status_code == 200
    body = response.get_json()
    assert body == {"data": {"session_id": shop, "status": "connected"}, "request_id": body["request_id"]}
    assert response.headers["x-request-id"] == body["request_id"]


def test_an_image_by_url_with_its_caption(app, client, runtime, shop, live_key):
    png = base64.b64decode(png_data_url().split(",", 1)[1])

    class Files(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args) -> None:
            pass

    app.config["ALLOW_PRIVATE_URLS"] = True  # the image is served on loopback
    with http_server(Files) as base_url:
        response = client.post(
            "/v1/messages/send-image",
            json={"session_id": shop, "to": "+14155551234", "image": f"{base_url}/r.png", "caption": "Receipt"},
            headers=bearer(live_key),
        )
    assert response.status_code == 201, response.get_json()
    [delivered] = runtime.engine_host.engine.outbox(shop)
    assert delivered["text"] == "Receipt"


# -- headers -------------------------------------------------------------------------------------


def test_a_send_stamps_the_message_quota_with_an_iso_reset(client, runtime, shop, live_key):
    response = send_text(client, live_key, shop)

    assert response.status_code == 201
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert response.headers["x-ratelimit-limit"] == "1000"
    assert response.headers["x-ratelimit-remaining"] == "999"
    assert datetime.fromisoformat(response.headers["x-ratelimit-reset"]) == midnight
    assert len(response.headers.getlist("x-ratelimit-limit")) == 1
    assert "retry-after" not in response.headers


def test_an_incoming_request_id_is_the_answers(client, runtime, shop, live_key):
    response = client.get(f"/v1/sessions/{shop}/status", headers=bearer(live_key) | {"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == response.get_json()["request_id"] == "trace-42"


# -- the error-code index ------------------------------------------------------------------------


def test_the_401s(app, client, account):
    missing = client.post("/v1/messages/send-text", json={"session_id": "s", "to": "+14155551234", "body": "Hi"})
    assert_error(missing, 401, "missing_authorization")
    basic = client.get("/v1/sessions/x/status", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(basic, 401, "invalid_authorization")
    unknown = client.get("/v1/sessions/x/status", headers=bearer("alm_sk_live_" + "0" * 64))
    assert_error(unknown, 401, "invalid_api_key")
    assert_error(client.get("/v1/sessions/x/status", headers=bearer("wag_live_" + "0" * 64)), 401, "invalid_api_key")

    revoked = make_key(client, account)
    client.delete(f"/api/keys/{revoked['id']}", headers=account.headers)
    assert_error(client.get("/v1/sessions/x/status", headers=bearer(revoked["key"])), 401, "api_key_revoked")

    expired = make_key(client, account)
    with app.app_context():
        db.session.get(ApiKey, expired["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert_error(client.get("/v1/sessions/x/status", headers=bearer(expired["key"])), 401, "api_key_expired")


def test_a_wagate_login_token_and_x_api_key_are_taken_too(client, runtime, shop, shop_owner, live_key):
    for headers in (shop_owner.headers, {"X-Api-Key": live_key}):
        response = client.get(f"/v1/sessions/{shop}/status", headers=headers)
        assert response.get_json()["data"]["status"] == "connected"


def test_bad_bodies_are_400(client, runtime, shop, live_key, shop_owner):
    broken = client.post(
        "/v1/messages/send-text",
        data='{"session_id": ',
        headers=bearer(live_key) | {"Content-Type": "application/json"},
    )
    assert_error(broken, 400, "invalid_json")
    for body in (
        {"to": "+14155551234", "body": "Hi"},
        {"session_id": shop, "to": "+14155551234"},
        {"session_id": shop, "to": "+14155551234", "body": "   "},
        {"session_id": shop, "to": "not a phone", "body": "Hi"},
        {"session_id": shop, "to": 14155551234, "body": "Hi"},
        [],
    ):
        response = client.post("/v1/messages/send-text", json=body, headers=bearer(live_key))
        assert_error(response, 400, "invalid_request")
    not_an_image = {"session_id": shop, "to": "+14155551234", "image": "data:image/png;base64,AAAA"}
    assert_error(
        client.post("/v1/messages/send-image", json=not_an_image, headers=bearer(live_key)), 400, "invalid_request"
    )
    assert quota_used(client, shop_owner) == 0


def test_a_trial_that_is_over_is_402(app, client, runtime, make_account):
    account = make_account()  # the free plan is a trial
    session_id = pair_session(client, account)
    key = make_key(client, account)["key"]
    with app.app_context():
        db.session.execute(
            update(User).where(User.id == account.user_id).values(created_at=datetime.now(UTC) - timedelta(days=400))
        )
        db.session.commit()
    assert_error(send_text(client, key, session_id), 402, "subscription_required")


def test_a_key_restricted_to_other_sessions_is_403(client, runtime, make_account):
    account = make_account(plan="enterprise")  # a plan with more than one session
    session_id = pair_session(client, account)
    other = client.post("/api/sessions", json={"name": "Other"}, headers=account.headers).get_json()["sessionId"]
    key = make_key(client, account, sessionIds=[other])["key"]
    assert_error(send_text(client, key, session_id), 403, "session_not_allowed")
    assert_error(client.get(f"/v1/sessions/{session_id}/status", headers=bearer(key)), 403, "session_not_allowed")
    assert client.get(f"/v1/sessions/{other}/status", headers=bearer(key)).get_json()["data"]["status"] in (
        "connecting",
        "pending",
    )


def test_somebody_elses_or_no_session_is_404(client, runtime, shop, make_account):
    stranger = make_key(client, make_account())["key"]
    assert_error(send_text(client, stranger, shop), 404, "session_not_found")
    assert_error(client.get(f"/v1/sessions/{shop}/status", headers=bearer(stranger)), 404, "session_not_found")
    assert_error(client.get(f"/v1/sessions/{DOC_SESSION}/status", headers=bearer(stranger)), 404, "session_not_found")


def test_a_recipient_not_on_whatsapp_is_404_and_keeps_the_slot(client, runtime, shop, shop_owner, live_key):
    response = send_text(client, live_key, shop, to="+14155550000")
    assert_error(response, 404, "invalid_request")
    assert response.headers["x-ratelimit-remaining"] == "999"
    assert quota_used(client, shop_owner) == 1


def test_a_session_never_paired_is_409(client, runtime, make_account):
    account = make_account()
    unpaired = client.post("/api/sessions", json={"name": "New"}, headers=account.headers).get_json()["sessionId"]
    for mode in ("test", "live"):
        key = make_key(client, account, mode=mode)["key"]
        assert_error(send_text(client, key, unpaired), 409, "session_not_ready")


def test_a_session_not_ready_is_409_and_keeps_the_slot(client, runtime, shop, shop_owner, live_key):

    fault(client, shop_owner, shop, "disconnect")
    wait_for(
        lambda: (
            client.get(f"/v1/sessions/{shop}/status", headers=bearer(live_key)).get_json()["data"]["status"]
            == "reconnecting"
        ),
        message="the session dropping",
    )
    response = send_text(client, live_key, shop)
    assert_error(response, 409, "session_not_ready")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00(\.000)?Z|.*\+00:00", response.headers["x-ratelimit-reset"])
    assert quota_used(client, shop_owner) == 1


def test_a_message_whatsapp_rejects_is_400_and_keeps_the_slot(client, runtime, shop, shop_owner, live_key):
    fault(client, shop_owner, shop, "rejected")
    assert_error(send_text(client, live_key, shop), 400, "invalid_request")
    assert quota_used(client, shop_owner) == 1


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("timeout", 504, "messaging_service_timeout"),
        ("unreachable", 502, "messaging_service_unreachable"),
        ("upstream_error", 502, "messaging_service_error"),
        ("auth_error", 502, "messaging_service_error"),
        ("overload", 503, "service_unavailable"),
    ],
)
def test_a_failure_upstream_is_refunded(client, runtime, shop, shop_owner, live_key, name, status, code):
    assert send_text(client, live_key, shop).status_code == 201  # a slot that stays spent
    fault(client, shop_owner, shop, name)

    response = send_text(client, live_key, shop, body="will fail")

    assert_error(response, status, code)
    assert quota_used(client, shop_owner) == 1
    assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == ("1000", "999")
    if status == 503:
        assert response.headers["retry-after"] == "3"
    else:
        assert "retry-after" not in response.headers


def test_an_overloaded_session_refuses_at_once_with_retry_after(client, runtime, shop, shop_owner, live_key):
    fault(client, shop_owner, shop, "overload")
    assert send_text(client, live_key, shop).status_code == 503
    fault(client, shop_owner, shop, "overload", on=False)

    refused = send_text(client, live_key, shop)
    assert_error(refused, 503, "service_unavailable")
    assert 1 <= int(refused.headers["retry-after"]) <= 3
    assert quota_used(client, shop_owner) == 0


def _set_quota(runner, *args) -> None:
    result = runner.invoke(args=["plans", "set-quota", *args])
    assert result.exit_code == 0, result.output


def test_the_daily_quota_is_429_with_retry_after(client, runtime, runner, shop, live_key):
    _set_quota(runner, "starter", "--daily", "1")
    assert send_text(client, live_key, shop).headers["x-ratelimit-remaining"] == "0"

    refused = send_text(client, live_key, shop)

    assert_error(refused, 429, "daily_quota_exceeded")
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(refused.headers["x-ratelimit-reset"]) == midnight
    assert abs(int(refused.headers["retry-after"]) - (midnight - datetime.now(UTC)).total_seconds()) <= 5


def test_the_trial_quota_is_429(client, runtime, runner, make_account):
    account = make_account()
    session_id = pair_session(client, account)
    key = make_key(client, account)["key"]
    _set_quota(runner, "free", "--trial", "1", "--trial-days", "7")
    assert send_text(client, key, session_id).status_code == 201
    refused = send_text(client, key, session_id)
    assert_error(refused, 429, "trial_quota_exceeded")
    assert refused.headers["retry-after"]


def test_the_request_rate_limit_is_429_rate_limited(client, runtime, shop, live_key, app):
    app.config["API_RATE_LIMIT"] = "2 per minute"
    for _ in range(2):
        assert client.get(f"/v1/sessions/{shop}/status", headers=bearer(live_key)).status_code == 200
    limited = client.get(f"/v1/sessions/{shop}/status", headers=bearer(live_key))
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1


# -- the document and its page -------------------------------------------------------------------


def test_the_document_has_auls_three_operations(client):
    document = client.get("/aulm/openapi.json", base_url="https://gw.example.com").get_json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "https://gw.example.com"}]
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations == {
        ("/v1/messages/send-text", "post"),
        ("/v1/messages/send-image", "post"),
        ("/v1/sessions/{id}/status", "get"),
    }
    send = document["paths"]["/v1/messages/send-text"]["post"]
    assert set(send["responses"]) == {
        "201",
        "400",
        "401",
        "402",
        "403",
        "404",
        "409",
        "429",
        "500",
        "502",
        "503",
        "504",
    }
    # The native document is unchanged by it.
    native = client.get("/api/openapi.json").get_json()
    assert not any(path.startswith("/v1/") for path in native["paths"])


def test_the_docs_page_links_auls_reference(client):
    page = client.get("/docs").get_data(as_text=True)
    assert 'href="/docs/aulm"' in page
    aulm_page = client.get("/docs/aulm")
    assert aulm_page.status_code == 200
    assert 'data-spec-url="/aulm/openapi.json"' in aulm_page.get_data(as_text=True)
