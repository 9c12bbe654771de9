"""The dashboard's message log: filters, search, pages, the Failed view and its Retry."""

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.dashboard import DashboardUser
from tests.helpers import decode_qr, wait_for

HTMX = {"HX-Request": "true"}


class _Rows(HTMLParser):
    """The message rows of a page: id, status and the text of each cell (a message's folded
    "Details" left out)."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: list[dict] = []
        self._cell: list[str] | None = None
        self._folded = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-message-id" in attrs:
            self.rows.append({"id": attrs["data-message-id"], "status": attrs["data-status"], "cells": []})
        elif tag == "td" and self.rows:
            self._cell = []
        elif tag == "details":
            self._folded += 1

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "details":
            self._folded -= 1

    def handle_data(self, data):
        if self._cell is not None and not self._folded:
            self._cell.append(data)


def _rows(html: str) -> list[dict]:
    return _Rows(html).rows


def _texts(html: str) -> list[str]:
    return [row["cells"][4] for row in _rows(html)]


def _link(html: str, label: str) -> str:
    return re.search(rf'href="([^"]+)"[^>]*>[^<]*{label}', html)[1].replace("&amp;", "&")


class Browser(DashboardUser):
    """A user logged in to the dashboard with a cookie, like a browser."""

    def page(self, query: str = "", **headers) -> str:
        response = self.client.get(f"/messages{query}", headers=headers)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def retry(self, message_id: str, **headers):
        return self.client.post(f"/messages/{message_id}/retry", headers={"X-CSRFToken": self.csrf, **headers})


@pytest.fixture
def browser(client, account):
    return Browser(client, account)


def _send(client, account, session_id, to="919876543210", text="Hello from wagate!") -> dict:
    response = client.post(
        f"/api/sessions/{session_id}/send", json={"to": to, "message": text}, headers=account.headers
    )
    return response.get_json()


def _inbound(client, account, session_id, texts: list[str], sender="447911123456") -> None:
    for text in texts:
        response = client.post(
            f"/api/simulator/sessions/{session_id}/inbound",
            json={"from": sender, "message": text},
            headers=account.headers,
        )
        assert response.status_code == 202
    wait_for(
        lambda: (
            client.get("/api/messages?direction=inbound", headers=account.headers).get_json()["total"] == len(texts)
        ),
        message="inbound messages stored",
    )


def _message(client, account, message_id) -> dict:
    return client.get(f"/api/messages/{message_id}", headers=account.headers).get_json()


def _pair(client, account, name: str) -> str:
    session_id = client.post("/api/sessions", json={"name": name}, headers=account.headers).get_json()["sessionId"]
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    assert client.post(urlsplit(decode_qr(qr["qrCode"])).path, json={"phone": "919876500001"}).status_code == 200
    return session_id


def _failed_send(client, account, session_id, text="Your order shipped") -> str:
    """A message that fails after its retries: the upstream errors until the fault is cleared."""
    faults = f"/api/simulator/faults?sessionId={session_id}"
    client.put(faults, json={"upstream_error": True}, headers=account.headers)
    message_id = _send(client, account, session_id, text=text)["messageId"]
    wait_for(lambda: _message(client, account, message_id)["status"] == "failed", message="the send to fail")
    client.delete(faults, headers=account.headers)
    return message_id


def test_the_log_needs_a_login(client):
    response = client.get("/messages")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_an_empty_log_says_what_to_do_next(browser):
    html = browser.page()
    assert "No messages yet" in html
    assert 'href="/sessions"' in html
    assert "No failed messages" in browser.page("?status=failed")


def test_the_log_shows_each_message_newest_first_with_its_failure(browser, client, account, shop):
    _send(client, account, shop, text="first")
    _send(client, account, shop, to="919876540000", text="second")
    html = browser.page()
    rows = _rows(html)
    assert [row["cells"][1:5] for row in rows] == [
        ["Shop", "Outbound", "+919876540000", "second"],
        ["Shop", "Outbound", "+919876543210", "first"],
    ]
    assert rows[0]["status"] == "failed"
    assert "Number not on WhatsApp" in rows[0]["cells"][5]
    assert "Retry" not in rows[0]["cells"][5]  # sending it again cannot help
    assert rows[1]["status"] in {"sent", "delivered", "read"}
    assert "Retry" not in rows[1]["cells"][5]
    # The Failed tab carries the count, and its view lists only the failed one.
    assert re.search(r'data-testid="failed-tab">\s*Failed <span class="badge badge-failed">1</span>', html)
    assert _texts(browser.page("?status=failed")) == ["second"]


def test_filters_narrow_the_log(browser, client, account, shop):
    _send(client, account, shop, text="out one")
    _send(client, account, shop, to="919876540000", text="out failed")
    _inbound(client, account, shop, ["in one"])
    assert set(_texts(browser.page("?direction=inbound"))) == {"in one"}
    assert set(_texts(browser.page("?direction=outbound"))) == {"out one", "out failed"}
    assert set(_texts(browser.page("?status=failed&direction=outbound"))) == {"out failed"}
    assert _texts(browser.page("?status=received&direction=outbound")) == []
    assert set(_texts(browser.page(f"?session={shop}&status=received"))) == {"in one"}
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    assert len(_rows(browser.page(f"?from={today}&to={today}"))) == 3
    assert len(_rows(browser.page(f"?from={yesterday}"))) == 3
    html = browser.page(f"?to={yesterday}")
    assert _rows(html) == [] and "No messages match these filters" in html
    # The form shows the filters it applied.
    html = browser.page("?status=failed&direction=outbound")
    assert '<option value="failed" selected>' in html
    assert '<option value="outbound" selected>' in html


def test_the_session_filter_picks_one_session(client, runtime, make_account):
    account = make_account(plan="growth")
    shop, support = _pair(client, account, "Shop"), _pair(client, account, "Support")
    _send(client, account, shop, text="from the shop")
    _send(client, account, support, text="from support")
    browser = Browser(client, account)
    assert _texts(browser.page(f"?session={shop}")) == ["from the shop"]
    assert _texts(browser.page(f"?session={support}")) == ["from support"]
    html = browser.page()
    assert [row["cells"][1] for row in _rows(html)] == ["Support", "Shop"]
    assert re.search(rf'<option value="{support}"\s*>Support</option>', html)
    assert re.search(rf'<option value="{shop}" selected>Shop</option>', browser.page(f"?session={shop}"))


def test_search_matches_the_text_and_the_phone_number(browser, client, account, shop):
    _send(client, account, shop, to="919876543210", text="Your ORDER 42 is ready")
    _send(client, account, shop, to="919811112222", text="See you at 5")
    _send(client, account, shop, to="919833334444", text="100% off_today")
    assert _texts(browser.page("?q=order+42")) == ["Your ORDER 42 is ready"]
    assert _texts(browser.page("?q=%2B91+98111-1222")) == ["See you at 5"]
    assert _texts(browser.page("?q=5")) == ["See you at 5", "Your ORDER 42 is ready"]
    # LIKE wildcards are searched for literally.
    assert _texts(browser.page("?q=%25")) == ["100% off_today"]
    assert _texts(browser.page("?q=f_t")) == ["100% off_today"]
    assert "No messages match these filters" in browser.page("?q=nothing+like+this")


def test_pages_of_fifty_go_older_and_back_newer(browser, client, account, shop):
    _inbound(client, account, shop, [f"message {i}" for i in range(51)])
    first = browser.page()
    assert len(_rows(first)) == 50
    assert "Newer" not in first
    older = browser.page("?" + urlsplit(_link(first, "Older")).query)
    assert len(_rows(older)) == 1 and "Older" not in older
    back = browser.page("?" + urlsplit(_link(older, "Newer")).query)
    assert [row["id"] for row in _rows(back)] == [row["id"] for row in _rows(first)]
    everything = {row["id"] for row in _rows(first) + _rows(older)}
    assert len(everything) == 51


def test_a_page_size_and_filters_carry_through_the_pages(browser, client, account, shop):
    _inbound(client, account, shop, ["a 1", "b", "a 2", "a 3"])
    seen: list[str] = []
    query = "?q=a&limit=2&direction=inbound"
    while True:
        html = browser.page(query)
        seen += _texts(html)
        if "Older" not in html:
            break
        query = "?" + urlsplit(_link(html, "Older")).query
        assert "q=a" in query and "limit=2" in query
    assert sorted(seen) == ["a 1", "a 2", "a 3"]


def test_html_in_a_message_is_shown_as_text(browser, client, account, shop):
    _send(client, account, shop, text='<script>alert(1)</script><b hx-get="/x">x</b>')
    html = browser.page()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b hx-get=" in html
    assert "<script>alert" not in html
    assert '<b hx-get="/x">' not in html


def test_htmx_gets_just_the_table_which_refreshes_itself_with_the_same_query(browser, client, account, shop):
    _send(client, account, shop, text="hello")
    fragment = browser.page("?status=sent&q=hel", **HTMX)
    assert not fragment.lstrip().startswith("<!doctype")
    assert fragment.lstrip().startswith('<div id="message-log"')
    assert 'hx-get="/messages?q=hel&amp;status=sent"' in fragment
    assert 'hx-trigger="wa-messages from:body"' in fragment
    page = browser.page("?status=sent&q=hel")
    assert page.startswith("<!doctype html>")
    assert '<div id="message-log" hx-get="/messages?q=hel&amp;status=sent"' in page
    assert 'hx-push-url="true"' in page and 'hx-target="#message-log"' in page


def test_a_bad_filter_is_explained_in_place(browser):
    html = browser.page("?from=2024-13-45")
    assert "must be a date like 2024-01-31" in html
    assert "must be one of" in browser.page("?status=lost")


def test_retry_queues_the_same_message_again_and_it_is_sent(browser, client, account, shop, runtime):
    message_id = _failed_send(client, account, shop)
    failed = _message(client, account, message_id)
    assert (failed["status"], failed["errorCode"]) == ("failed", "UPSTREAM_ERROR")
    assert _texts(browser.page("?status=failed")) == ["Your order shipped"]

    response = browser.retry(message_id, **HTMX)
    assert response.status_code == 200
    row = _rows(response.get_data(as_text=True))
    assert len(row) == 1 and row[0]["id"] == message_id
    assert row[0]["status"] in {"queued", "sent", "delivered", "read"}
    assert "UPSTREAM_ERROR" not in response.get_data(as_text=True)

    sent = wait_for(
        lambda: (m := _message(client, account, message_id))["status"] in {"sent", "delivered", "read"} and m,
        message="the retried message to be sent",
    )
    assert (sent["error"], sent["errorCode"], sent["failedAt"]) == (None, None, None)
    assert [m["id"] for m in runtime.engine_host.engine.outbox(shop)] == [failed["waMessageId"]]
    assert client.get("/api/messages", headers=account.headers).get_json()["total"] == 1
    html = browser.page("?status=failed")
    assert _rows(html) == [] and "No failed messages" in html


def test_retry_without_javascript_redirects_back_with_a_notice(browser, client, account, shop):
    message_id = _failed_send(client, account, shop)
    html = browser.page("?status=failed&q=order")
    form = re.search(
        r'action="(/messages/[^"]+/retry)".*?name="csrf_token" value="([^"]+)".*?name="next" value="([^"]+)"',
        html,
        re.S,
    )
    action, token, back = form[1], form[2], form[3].replace("&amp;", "&")
    assert action == f"/messages/{message_id}/retry"
    response = browser.client.post(action, data={"csrf_token": token, "next": back})
    assert response.status_code == 302
    assert response.headers["Location"] == "/messages?q=order&status=failed"
    assert "queued again" in browser.page()
    wait_for(lambda: _message(client, account, message_id)["status"] in {"sent", "delivered", "read"})
    elsewhere = browser.client.post(action, data={"csrf_token": token, "next": "https://example.org/"})
    assert elsewhere.headers["Location"] == "/messages"


def test_retry_is_refused_in_place_unless_failed_outbound_on_a_connected_session(browser, client, account, shop):
    sent_id = _send(client, account, shop)["messageId"]
    response = browser.retry(sent_id, **HTMX)
    assert response.status_code == 200
    assert "Only failed outgoing messages can be retried" in response.get_data(as_text=True)

    failed_id = _failed_send(client, account, shop)
    client.post(f"/api/sessions/{shop}/disconnect", headers=account.headers)
    wait_for(
        lambda: (
            client.get(f"/api/sessions/{shop}/status", headers=account.headers).get_json()["status"] == "disconnected"
        )
    )
    html = browser.retry(failed_id, **HTMX).get_data(as_text=True)
    assert "Session is disconnected; reconnect it before retrying" in html
    assert _rows(html)[0]["status"] == "failed"
    assert _message(client, account, failed_id)["status"] == "failed"


def test_no_retry_is_offered_where_it_cannot_help(browser, client, account, shop):
    """A number not on WhatsApp stays so: the row offers no Retry, and a retry is refused in place."""
    failed_id = _send(client, account, shop, to="919876540000")["messageId"]
    wait_for(lambda: _message(client, account, failed_id)["status"] == "failed", message="the send to fail")
    html = browser.page("?status=failed")
    assert _rows(html)[0]["id"] == failed_id
    assert "Number not on WhatsApp" in html and f"/messages/{failed_id}/retry" not in html
    refused = browser.retry(failed_id, **HTMX).get_data(as_text=True)
    assert "Sending it again cannot help: Number not on WhatsApp" in refused
    assert _message(client, account, failed_id)["status"] == "failed"

    upstream_id = _failed_send(client, account, shop)  # WhatsApp's side: worth another try
    assert f"/messages/{upstream_id}/retry" in browser.page("?status=failed")


def test_a_post_without_the_csrf_token_is_rejected(browser, client, account, shop):
    message_id = _send(client, account, shop, to="919876540000")["messageId"]
    response = browser.client.post(f"/messages/{message_id}/retry", headers=HTMX)
    assert response.status_code == 400
    assert _message(client, account, message_id)["status"] == "failed"
