"""Wallm's API on wagate: its documented example sent as Wallm's users write it, with only
the base URL and the key changed (a wagate API key in X-Api-Key)."""

from __future__ import annotations

import time

import pytest

from tests import dialect_fuzz

# The live server and its context, for the schemathesis run.
live, context = dialect_fuzz.live, dialect_fuzz.context

# Wallm's example, as its document writes it (only the key differs).
EXAMPLE = {"to": "+966501234567", "text": "أهلا, عساك بخير؟"}


def _key(client, account, mode: str = "live") -> str:
    response = client.post("/api/keys", json={"name": "wallm", "mode": mode}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["key"]


def _send(client, session_id: str, key: str, body: dict = EXAMPLE):
    return client.post(
        f"/v1/sessions/{session_id}/messages/text",
        json=body,
        headers={"Content-Type": "application/json", "X-Api-Key": key},
    )


def test_the_documented_example_sends_the_text(client, shop, account):
    key = _key(client, account)
    response = _send(client, shop, key)
    assert response.status_code in (200, 202), response.get_json()
    body = response.get_json()
    assert body["to"] == "966501234567" and body["sessionId"] == shop
    assert body["status"] in ("queued", "sent", "delivered", "read") and body["simulated"] is False
    # The same message in wagate's own log, with the Arabic text intact.
    message = client.get(f"/api/messages/{body['id']}", headers=account.headers).get_json()
    assert message["to"] == "966501234567" and message["message"] == EXAMPLE["text"]


def test_rate_limit_headers_reset_in_unix_time(client, shop, account):
    key = _key(client, account)
    response = _send(client, shop, key)
    assert int(response.headers["X-RateLimit-Limit"]) > 0
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) < int(response.headers["X-RateLimit-Limit"])
    reset = int(response.headers["X-RateLimit-Reset"])
    assert time.time() - 5 < reset < time.time() + 24 * 3600


@pytest.mark.parametrize("config_overrides", [{"API_RATE_LIMIT": "2 per 15 minutes"}])
def test_past_the_limit_the_answer_is_429_until_the_reset(client, shop, account):
    key = _key(client, account)
    answers = [_send(client, shop, key) for _ in range(3)]
    assert [answer.status_code in (200, 202) for answer in answers[:2]] == [True, True]
    refused = answers[2]
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "RATE_LIMITED"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) > 0
    assert int(refused.headers["X-RateLimit-Reset"]) > time.time()


def test_a_test_key_simulates_the_send(client, shop, account):
    response = _send(client, shop, _key(client, account, mode="test"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["simulated"] is True and body["id"].startswith("sim_") and body["status"] == "sent"


def test_a_missing_or_wrong_key_is_401(client, account):
    missing = client.post("/v1/sessions/anything/messages/text", json=EXAMPLE)
    assert missing.status_code == 401 and missing.get_json()["code"] == "AUTH_REQUIRED"
    wrong = _send(client, "anything", "wag_live_" + "x" * 32)
    assert wrong.status_code == 401 and set(wrong.get_json()) >= {"error", "message", "code"}


def test_another_users_session_is_404(client, shop, make_account):
    stranger = make_account()
    response = _send(client, shop, _key(client, stranger))
    assert response.status_code == 404 and response.get_json()["code"] == "SESSION_NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"text": "Hi"}, "INVALID_NUMBER", "to"),
        ({"to": "+966501234567"}, "EMPTY_MESSAGE", "text"),
        ({"to": "+966501234567", "text": "   "}, "EMPTY_MESSAGE", "text"),
        ({"to": "+966501234567", "text": "x" * 5000}, "MESSAGE_TOO_LONG", "text"),
        ({"to": "12", "text": "Hi"}, "INVALID_NUMBER", "to"),
    ],
)
def test_a_bad_request_is_400_naming_the_field(client, shop, account, body, code, field):
    response = _send(client, shop, _key(client, account), body)
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert answer["code"] == code and answer["field"] == field and answer["message"]


def test_the_document_and_its_page(client):
    document = client.get("/docs/wallm/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    operation = document["paths"]["/v1/sessions/{sessionId}/messages/text"]["post"]
    assert operation["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "X-Api-Key"
    assert {"200", "202", "401", "404", "429"} <= set(operation["responses"])
    page = client.get("/docs/wallm")
    assert page.status_code == 200 and b"/docs/wallm/openapi.json" in page.data
    assert b'href="/docs/wallm"' in client.get("/docs").data  # listed on the native reference page


@pytest.mark.fuzz
@pytest.mark.live_server
def test_schemathesis_finds_nothing_in_the_document(context, tmp_path):
    config = f"""
[auth.openapi.apiKey]
api_key = "{context["apiKey"]}"

[parameters]
"path.sessionId" = "{context["session"]}"
"""
    outcome = dialect_fuzz.fuzz_dialect(context, tmp_path, "/docs/wallm/openapi.json", config, examples=100)
    assert outcome["test_cases"]["generated"] > 100
