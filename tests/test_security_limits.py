"""Resource limits: every request, page, batch and outbound call is bounded, and going over
a bound is a clear answer in the documented shape, not a hang or a crash."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest

from tests.dashboard import DashboardUser, csrf_token
from tests.helpers import http_server, pair_session

MB = 1024 * 1024


@pytest.fixture
def config_overrides():
    return {
        "ALLOW_PRIVATE_URLS": True,
        "SEND_MAX_REQUEST_BYTES": 2 * MB,
        "BULK_MAX_CONTACTS": 5,
        "MEDIA_FETCH_TIMEOUT_SECONDS": 1.0,
        "SMTP_TIMEOUT_SECONDS": 0.5,
    }


def _too_large(response, limit: int) -> None:
    body = response.get_json()
    assert response.status_code == 413, body
    assert (body["error"], body["code"], body["maxBytes"]) == ("Request too large", "PAYLOAD_TOO_LARGE", limit)
    assert f"{limit} bytes" in body["message"]


# Request bodies


def test_a_body_over_max_content_length_is_413_in_the_documented_shape(client, account):
    big = b'{"name": "' + b"x" * (MB + 10) + b'"}'
    _too_large(client.post("/api/sessions", data=big, content_type="application/json", headers=account.headers), MB)
    assert client.get("/api/sessions", headers=account.headers).get_json()["total"] == 0


def _chunked(client, url: str, body: bytes, **kwargs):
    """POST `body` as a server hands on a chunked one: no Content-Length, the stream ends itself."""
    return client.post(
        url,
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
        **kwargs,
    )


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit_too(client, account):
    response = _chunked(
        client,
        "/api/sessions",
        b'{"name": "' + b"x" * (MB + 10) + b'"}',
        content_type="application/json",
        headers=account.headers,
    )
    _too_large(response, MB)
    assert client.get("/api/sessions", headers=account.headers).get_json()["total"] == 0


@pytest.mark.parametrize("over", [1, 64 * 1024])
def test_a_chunked_body_just_over_the_limit_is_413_and_one_at_it_goes_through(client, runtime, account, over):
    name = b'{"name": "Shop", "description": "'
    at_limit = name + b"x" * (MB - len(name) - 2) + b'"}'
    assert len(at_limit) == MB
    created = _chunked(client, "/api/sessions", at_limit, content_type="application/json", headers=account.headers)
    assert created.status_code == 400 and created.get_json()["code"] != "INVALID_JSON", created.get_json()
    small = _chunked(
        client, "/api/sessions", b'{"name": "Shop"}', content_type="application/json", headers=account.headers
    )
    assert small.status_code == 201, small.get_json()
    over_body = name + b"x" * (MB - len(name) - 2 + over) + b'"}'
    _too_large(
        _chunked(client, "/api/sessions", over_body, content_type="application/json", headers=account.headers), MB
    )


def test_a_chunked_send_over_its_larger_limit_is_413_in_every_dialect(client, runtime, account):
    session_id = pair_session(client, account)
    over = b'{"to": "919876543210", "message": "' + b"x" * (2 * MB) + b'"}'
    native = _chunked(
        client, f"/api/sessions/{session_id}/send", over, content_type="application/json", headers=account.headers
    )
    _too_large(native, 2 * MB)
    selfhosted = _chunked(
        client,
        f"/api/v1/send-message?sessionId={session_id}",
        over,
        content_type="application/json",
        headers=account.headers,
    )
    assert selfhosted.status_code == 413, selfhosted.get_json()
    wamux = _chunked(client, "/api/v1/messages", over, content_type="application/json", headers=account.headers)
    assert wamux.status_code == 413, wamux.get_json()


def test_a_chunked_dashboard_form_over_the_limit_gets_an_html_413(client, account):
    DashboardUser(client, account)
    token = csrf_token(client.get("/sessions").get_data(as_text=True))
    body = f"csrf_token={token}&name=".encode() + b"x" * (MB + 10)
    response = _chunked(client, "/sessions", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413 and "<html" in response.get_data(as_text=True)


def test_a_send_may_be_larger_for_inline_media_but_not_without_bound(client, runtime, account):
    session_id = pair_session(client, account)
    url = f"/api/sessions/{session_id}/send"
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(int(1.2 * MB))).decode()
    within = client.post(
        url, json={"to": "919876543210", "image": f"data:image/png;base64,{png}"}, headers=account.headers
    )
    assert within.status_code != 413, within.get_json()
    over = b'{"to": "919876543210", "message": "' + b"x" * (2 * MB) + b'"}'
    _too_large(client.post(url, data=over, content_type="application/json", headers=account.headers), 2 * MB)


def test_a_dashboard_form_over_the_limit_gets_an_html_413(client, account):
    DashboardUser(client, account)
    token = csrf_token(client.get("/sessions").get_data(as_text=True))
    response = client.post("/sessions", data={"name": "x" * (MB + 10), "csrf_token": token})
    assert response.status_code == 413 and "<html" in response.get_data(as_text=True)


def test_over_long_fields_are_400_not_stored(client, runtime, account):
    session_id = pair_session(client, account)
    response = client.post(
        f"/api/sessions/{session_id}/send", json={"to": "919876543210", "message": "x" * 4097}, headers=account.headers
    )
    assert response.status_code == 400
    long_name = client.post("/api/keys", json={"name": "k" * 101}, headers=account.headers)
    assert long_name.status_code == 400


# Page sizes


def _messages(client, account, **query):
    return client.get("/api/messages", query_string=query, headers=account.headers)


@pytest.mark.parametrize(
    ("query", "limit"), [({}, 50), ({"limit": 7}, 7), ({"limit": 200}, 200), ({"limit": 10**9}, 200)]
)
def test_a_page_size_above_the_maximum_is_clamped_and_says_so(client, runtime, account, query, limit):
    session_id = pair_session(client, account)
    response = _messages(client, account, **query)
    assert (response.status_code, response.get_json()["limit"]) == (200, limit)
    contacts = client.get(f"/api/sessions/{session_id}/contacts", query_string=query, headers=account.headers)
    assert (contacts.status_code, contacts.get_json()["limit"]) == (200, limit)


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": -5}, {"limit": "many"}, {"limit": "1e9"}, {"page": 0}, {"page": "two"}]
)
def test_a_page_size_or_number_that_is_not_a_positive_whole_number_is_400(client, runtime, account, query):
    session_id = pair_session(client, account)
    for url in ("/api/messages", f"/api/sessions/{session_id}/contacts"):
        response = client.get(url, query_string=query, headers=account.headers)
        assert (response.status_code, response.get_json()["code"]) == (400, "INVALID_FIELD"), url
    if "limit" in query:
        failed = client.get("/api/messages/failed", query_string=query, headers=account.headers)
        assert (failed.status_code, failed.get_json()["code"]) == (400, "INVALID_FIELD")


def test_a_page_far_past_the_end_is_empty_and_quick(client, account):
    started = time.monotonic()
    response = _messages(client, account, page=10**12, limit=200)
    assert response.status_code == 200 and response.get_json()["messages"] == []
    assert time.monotonic() - started < 2


def test_delivery_logs_are_paged_too(client, make_account):
    account = make_account(plan="starter")
    webhook = client.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=account.headers)
    url = f"/api/webhooks/{webhook.get_json()['id']}/deliveries"
    assert client.get(url, query_string={"limit": 10**6}, headers=account.headers).status_code == 200
    refused = client.get(url, query_string={"limit": 0}, headers=account.headers)
    assert (refused.status_code, refused.get_json()["code"]) == (400, "INVALID_FIELD")


# Batch sizes


def test_a_bulk_send_over_bulk_max_contacts_is_400(client, growth_session):
    account, _ = growth_session
    contacts = [f"91987654321{i}" for i in range(6)]
    response = client.post(
        "/api/whatsapp/bulk-send", json={"contacts": contacts, "message": "hi", "delay": 0}, headers=account.headers
    )
    body = response.get_json()
    assert (response.status_code, body["code"]) == (400, "TOO_MANY_CONTACTS")
    assert "at most 5" in body["message"]
    accepted = client.post(
        "/api/whatsapp/bulk-send", json={"contacts": contacts[:5], "message": "hi", "delay": 0}, headers=account.headers
    )
    assert accepted.status_code in (200, 202), accepted.get_json()


def test_batches_of_numbers_participants_and_contacts_are_bounded(client, runtime, account):
    session_id = pair_session(client, account)
    base = f"/api/sessions/{session_id}"
    phones = [f"9198765{i:05d}" for i in range(257)]
    checks = client.post(f"{base}/on-whatsapp", json={"phones": phones[:101]}, headers=account.headers)
    assert (checks.status_code, checks.get_json()["code"]) == (400, "TOO_MANY_NUMBERS")
    group = client.post(f"{base}/groups", json={"name": "Big", "participants": phones}, headers=account.headers)
    assert (group.status_code, group.get_json()["code"]) == (400, "INVALID_PARTICIPANTS")
    book = [{"phone": "919876543210", "name": "x"}] * 5001
    synced = client.post(
        f"/api/simulator/sessions/{session_id}/address-book", json={"contacts": book}, headers=account.headers
    )
    assert (synced.status_code, synced.get_json()["code"]) == (400, "INVALID_CONTACTS")


# Outbound calls


class _Stalling(BaseHTTPRequestHandler):
    """/drip answers a byte at a time, forever; /silent never answers at all."""

    release = threading.Event()

    def do_GET(self):  # noqa: N802 - the stdlib's name
        if self.path == "/silent":
            self.release.wait(30)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(MB))
        self.end_headers()
        self.wfile.write(b"\x89PNG\r\n\x1a\n")
        while not self.release.wait(0.1):
            try:
                self.wfile.write(b"\x00")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *args):
        pass


@contextmanager
def _stalling_server():
    _Stalling.release.clear()
    with http_server(_Stalling) as url:
        try:
            yield url
        finally:
            _Stalling.release.set()


@pytest.mark.parametrize("path", ["/drip", "/silent"])
def test_a_media_url_that_never_finishes_fails_clearly_within_the_time_limit(client, runtime, account, path):
    session_id = pair_session(client, account)
    with _stalling_server() as base:
        started = time.monotonic()
        response = client.post(
            f"/api/sessions/{session_id}/send",
            json={"to": "919876543210", "image": f"{base}{path}"},
            headers=account.headers,
        )
        elapsed = time.monotonic() - started
    body = response.get_json()
    assert (response.status_code, body["code"]) == (400, "MEDIA_FETCH_FAILED")
    assert "longer than 1 s" in body["message"]
    assert elapsed < 4


@contextmanager
def _silent_smtp_server():
    """A mail server that accepts the connection and then never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    done = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        for connection in held:
            connection.close()
        listener.close()


def test_a_mail_server_that_never_answers_neither_hangs_nor_reveals_the_account(app, client, account):
    with _silent_smtp_server() as port:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
        token = csrf_token(client.get("/forgot-password").get_data(as_text=True))
        answers = []
        for email in (account.email, "nobody@example.com"):
            started = time.monotonic()
            response = client.post("/forgot-password", data={"email": email, "csrf_token": token})
            answers.append((response.status_code, response.headers.get("Location")))
            assert time.monotonic() - started < 3, email
    assert answers[0] == answers[1] and answers[0][0] == 302


def test_every_outbound_call_has_a_finite_time_limit_by_default(app):
    """Webhook attempts: tests/test_webhooks.py::test_an_attempt_gives_up_after_the_timeout; the
    engine: tests/test_messages.py::test_a_slow_engine_answers_202_and_the_send_still_completes_once."""
    from config import Config

    assert 0 < Config.WEBHOOK_TIMEOUT_SECONDS <= 30 and 0 < Config.MEDIA_FETCH_TIMEOUT_SECONDS <= 60
    assert 0 < Config.SMTP_TIMEOUT_SECONDS <= 30 and 0 < Config.NEONIZE_CALL_TIMEOUT_SECONDS <= 60
    assert 0 < Config.SEND_WAIT_SECONDS <= 30 and 0 < Config.NUMBER_CHECK_WAIT_SECONDS <= 30
