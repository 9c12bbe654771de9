"""Dashboard webhooks: add an endpoint (secret shown once), the delivery log, test events,
redelivery, rotation, pause and delete, the disabled-endpoint warning, CSRF, and privacy."""

import re

import pytest

from tests.dashboard import DashboardUser
from tests.helpers import LOCAL_RECEIVERS, pair_session, wait_for


@pytest.fixture
def config_overrides() -> dict:
    return LOCAL_RECEIVERS


SECRET = re.compile(r"whsec_[0-9a-f]{64}")
EVENTS = ["message.received", "message.status", "session.connected", "session.disconnected", "session.qr"]


@pytest.fixture
def user(client, starter) -> DashboardUser:
    return DashboardUser(client, starter, landing="/webhooks")


def _webhooks(client, account) -> list[dict]:
    return client.get("/api/webhooks", headers=account.headers).get_json()["webhooks"]


def _create(user: DashboardUser, url: str, **fields):
    return user.htmx("POST", "/webhooks", data={"url": url, "events": EVENTS, "session_id": "", **fields})


def _log(user: DashboardUser, webhook_id: str) -> str:
    return user.htmx("GET", f"/webhooks/{webhook_id}/deliveries").get_data(as_text=True)


def test_a_new_endpoint_shows_its_secret_once_and_the_list_only_its_hint(client, starter, user, receiver):
    page = client.get("/webhooks").get_data(as_text=True)
    assert "No webhook endpoints yet" in page
    assert 'aria-current="page">Webhooks</a>' in page
    # Every event is offered, all but the six an endpoint must ask for (presence, the
    # watchdog's three, the history backfill's two) ticked by default.
    assert page.count('name="events"') == 13 and page.count("checked") >= 7

    response = _create(user, receiver.url())
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "wa-webhooks"
    fragment = response.get_data(as_text=True)
    secret = SECRET.search(fragment).group(0)
    assert "shown only this once" in fragment and 'data-copy="#secret-' in fragment
    assert receiver.url() not in fragment.split("</pre>", 1)[1]  # the form is blank again

    [webhook] = _webhooks(client, starter)
    assert webhook["events"] == EVENTS and webhook["sessionId"] is None
    listed = user.htmx("GET", "/webhooks").get_data(as_text=True)
    page = client.get("/webhooks").get_data(as_text=True)
    for html in (listed, page):
        assert secret not in html and not SECRET.search(html)
        assert f"{secret[:10]}…" in html and receiver.url() in html
        assert "Every session" in html and "badge-enabled" in html and "No deliveries yet" in html


def test_an_endpoint_for_one_session(client, runtime, starter, user, receiver):
    session_id = pair_session(client, starter)
    page = client.get("/webhooks").get_data(as_text=True)
    assert f'<option value="{session_id}">Shop</option>' in page
    _create(user, receiver.url(), session_id=session_id, events=["message.received"])
    [webhook] = _webhooks(client, starter)
    assert (webhook["sessionId"], webhook["events"]) == (session_id, ["message.received"])
    assert "Shop · message.received" in user.htmx("GET", "/webhooks").get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", [{}])
def test_bad_input_is_explained_on_the_form(client, starter, user):
    fragment = user.htmx("POST", "/webhooks", data={"url": "https://example.com/hook"}).get_data(as_text=True)
    assert "Tick at least one event" in fragment and not SECRET.search(fragment)
    fragment = _create(user, "http://127.0.0.1:9/hook").get_data(as_text=True)
    assert 'class="field-error"' in fragment and "ALLOW_PRIVATE_URLS" in fragment and not SECRET.search(fragment)
    fragment = _create(user, "ftp://example.com/hook").get_data(as_text=True)
    assert "http:// or https://" in fragment
    assert _webhooks(client, starter) == []


def test_the_free_plan_is_told_webhooks_need_starter(client, account):
    DashboardUser(client, account, landing="/webhooks")
    page = client.get("/webhooks").get_data(as_text=True)
    assert "Webhooks need the Starter plan or above" in page and 'name="url"' not in page


def test_send_a_test_event_watch_the_log_and_redeliver(client, runtime, starter, user, receiver):
    _create(user, receiver.url())
    [webhook] = _webhooks(client, starter)
    page = client.get("/webhooks").get_data(as_text=True)
    assert f'hx-post="/webhooks/{webhook["id"]}/test"' in page

    receiver.answer(500)
    fragment = user.htmx("POST", f"/webhooks/{webhook['id']}/test").get_data(as_text=True)
    assert fragment.startswith(f'<div id="deliveries-{webhook["id"]}"') and "webhook.test" in fragment
    assert 'hx-trigger="every 2s"' in fragment  # polls while the attempt is due
    wait_for(lambda: "badge-dead" in _log(user, webhook["id"]), message="the failed test delivery")
    log = _log(user, webhook["id"])
    assert "every 2s" not in log and '<span data-testid="status-code">500</span>' in log and " ms</span>" in log
    assert "{&#34;ok&#34;: true}" in log or '{"ok": true}' in log  # the receiver's answer
    delivery_id = receiver.received[0].delivery_id
    assert f'data-delivery-id="{delivery_id}"' in log

    fragment = user.htmx("POST", f"/webhooks/{webhook['id']}/deliveries/{delivery_id}/redeliver").get_data(as_text=True)
    assert "badge-pending" in fragment
    wait_for(lambda: "badge-succeeded" in _log(user, webhook["id"]), message="the redelivery")
    assert [(r.delivery_id, r.attempt) for r in receiver.received] == [(delivery_id, 1), (delivery_id, 2)]
    assert '<span data-testid="status-code">200</span>' in _log(user, webhook["id"])


def test_rotating_the_secret_shows_the_new_one_once(client, starter, user, receiver):
    first = SECRET.search(_create(user, receiver.url()).get_data(as_text=True)).group(0)
    [webhook] = _webhooks(client, starter)
    fragment = user.htmx("POST", f"/webhooks/{webhook['id']}/rotate-secret").get_data(as_text=True)
    rotated = SECRET.search(fragment).group(0)
    assert rotated != first and fragment.count(rotated) == 1
    assert _webhooks(client, starter)[0]["secretHint"] == rotated[:10]
    assert not SECRET.search(user.htmx("GET", "/webhooks").get_data(as_text=True))


def test_pause_enable_and_delete(client, starter, user, receiver):
    _create(user, receiver.url())
    [webhook] = _webhooks(client, starter)
    listed = user.htmx("POST", f"/webhooks/{webhook['id']}/disable").get_data(as_text=True)
    assert "badge-disabled" in listed and f"/webhooks/{webhook['id']}/enable" in listed
    assert f"/webhooks/{webhook['id']}/test" not in listed
    assert _webhooks(client, starter)[0]["enabled"] is False
    # Paused by its owner: nothing to warn about.
    assert 'data-testid="webhook-alert"' not in client.get("/sessions").get_data(as_text=True)

    listed = user.htmx("POST", f"/webhooks/{webhook['id']}/enable").get_data(as_text=True)
    assert "badge-enabled" in listed and _webhooks(client, starter)[0]["enabled"] is True
    page = client.get("/webhooks").get_data(as_text=True)
    assert "hx-confirm=" in page and f"/webhooks/{webhook['id']}/delete" in page
    listed = user.htmx("POST", f"/webhooks/{webhook['id']}/delete").get_data(as_text=True)
    assert "No webhook endpoints yet" in listed and _webhooks(client, starter) == []


@pytest.mark.parametrize(
    "config_overrides",
    [{**LOCAL_RECEIVERS, "WEBHOOK_MAX_CONSECUTIVE_FAILURES": 1, "WEBHOOK_DISABLE_AFTER_SECONDS": 0}],
)
def test_an_endpoint_disabled_after_failures_is_announced_on_every_page(client, runtime, starter, user, receiver):
    _create(user, receiver.url())
    [webhook] = _webhooks(client, starter)
    receiver.answer(500)
    user.htmx("POST", f"/webhooks/{webhook['id']}/test")
    wait_for(lambda: not _webhooks(client, starter)[0]["enabled"], message="the endpoint disabled")

    for path in ("/sessions", "/messages", "/webhooks"):
        page = client.get(path).get_data(as_text=True)
        assert 'data-testid="webhook-alert"' in page, path
        assert receiver.url() in page and "1 failed attempts in a row" in page
    assert 'href="/webhooks">Review webhooks</a>' in client.get("/sessions").get_data(as_text=True)
    listing = client.get("/webhooks").get_data(as_text=True)
    assert "badge-disabled" in listing and "1 failed attempt(s) in a row, failing since <time datetime=" in listing

    user.htmx("POST", f"/webhooks/{webhook['id']}/enable")
    assert 'data-testid="webhook-alert"' not in client.get("/sessions").get_data(as_text=True)


def test_forms_without_a_valid_csrf_token_are_rejected(client, starter, user, receiver):
    assert client.post("/webhooks", data={"url": receiver.url(), "events": EVENTS}).status_code == 400
    assert _webhooks(client, starter) == []
    _create(user, receiver.url())
    [webhook] = _webhooks(client, starter)
    for action in ("delete", "test", "rotate-secret", "disable"):
        assert client.post(f"/webhooks/{webhook['id']}/{action}", headers={"HX-Request": "true"}).status_code == 400
    assert _webhooks(client, starter)[0]["secretHint"] == webhook["secretHint"]
    assert receiver.received == []


def test_other_users_endpoints_are_neither_shown_nor_touched(
    app, client, runtime, starter, user, make_account, receiver
):
    _create(user, receiver.url())
    [webhook] = _webhooks(client, starter)
    user.htmx("POST", f"/webhooks/{webhook['id']}/test")
    wait_for(lambda: receiver.received)
    delivery_id = receiver.received[0].delivery_id

    other_browser = app.test_client()
    other = DashboardUser(other_browser, make_account(plan="starter"), landing="/webhooks")
    page = other_browser.get("/webhooks").get_data(as_text=True)
    assert receiver.url() not in page and "No webhook endpoints yet" in page
    for method, path in (
        ("GET", f"/webhooks/{webhook['id']}/deliveries"),
        ("POST", f"/webhooks/{webhook['id']}/test"),
        ("POST", f"/webhooks/{webhook['id']}/deliveries/{delivery_id}/redeliver"),
        ("POST", f"/webhooks/{webhook['id']}/rotate-secret"),
        ("POST", f"/webhooks/{webhook['id']}/disable"),
        ("POST", f"/webhooks/{webhook['id']}/delete"),
    ):
        assert other.htmx(method, path).status_code == 404, path
    assert _webhooks(client, starter)[0]["enabled"] is True
    assert len(receiver.received) == 1


def test_a_form_post_without_htmx_shows_the_whole_page_with_the_secret(client, runtime, starter, user, receiver):
    response = client.post("/webhooks", data={"url": receiver.url(), "events": EVENTS, "csrf_token": user.csrf})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert html.count(SECRET.search(html).group(0)) == 1
    [webhook] = _webhooks(client, starter)
    response = client.post(f"/webhooks/{webhook['id']}/test", data={"csrf_token": user.csrf})
    assert response.status_code == 302 and response.headers["Location"] == "/webhooks"
