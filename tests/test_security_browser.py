"""Hostile text in real headless Chromium: what users and their contacts write shows as text
and does nothing, under the Content-Security-Policy, with htmx configured for it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests

from tests.browser import chromium, policy_problems
from tests.helpers import decode_qr
from tests.live import embedded_server

pytestmark = [pytest.mark.browser, pytest.mark.live_server]

PASSWORD = "a good long password"
# Markup a contact or a user could send: scripts, handlers, and htmx attributes that would
# call the API on load if they ever reached the page as markup.
PAYLOAD = (
    '<script>alert("script")</script><img src=x onerror=alert("img")>'
    '<b hx-get="/api/me" hx-trigger="load" hx-target="body">htmx</b>'
    '"><svg onload=alert("svg")>\'><a href="javascript:alert(1)">link</a>'
)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with embedded_server(
        tmp_path_factory.mktemp("hostile"), BULK_MIN_DELAY_MS="0", SIMULATOR_RECEIPT_SECONDS="0.3"
    ) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def hostile(live):
    """An account whose session, messages, contacts, groups, keys and bulk send all carry PAYLOAD."""
    api = f"{live}/api"
    token = requests.post(f"{api}/register", json={"email": "owner@example.com", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    session_id = requests.post(f"{api}/sessions", json={"name": PAYLOAD[:100]}, headers=auth).json()["sessionId"]
    qr = requests.get(f"{api}/sessions/{session_id}/qr", headers=auth).json()
    assert requests.post(f"{live}{urlsplit(decode_qr(qr['qrCode'])).path}", json={"phone": "919800000001"}).ok
    base = f"{api}/sessions/{session_id}"
    assert requests.post(f"{base}/send", json={"to": "919876543210", "message": PAYLOAD}, headers=auth).ok
    inbound = {"from": "919811112222", "message": PAYLOAD}
    assert requests.post(f"{api}/simulator/sessions/{session_id}/inbound", json=inbound, headers=auth).ok
    contact = {"name": PAYLOAD[:200], "notes": PAYLOAD, "tags": ["<script>x</script>"]}
    assert requests.put(f"{base}/contacts/919811112222", json=contact, headers=auth).ok
    group = {"name": PAYLOAD[:100], "participants": ["919876543213"]}
    assert requests.post(f"{base}/groups", json=group, headers=auth).ok
    assert requests.post(f"{api}/keys", json={"name": PAYLOAD[:100]}, headers=auth).ok
    bulk = {"contacts": ["919876543211"], "message": PAYLOAD, "delay": 0}
    batch = requests.post(f"{api}/whatsapp/bulk-send", json=bulk, headers=auth).json()
    return {"session": session_id, "batch": batch["batchId"], "auth": auth}


class Watched:
    """A logged-in page, and everything it requested, refused or popped up."""

    def __init__(self, browser, live) -> None:
        self.context = browser.new_context(base_url=live)
        self.problems = policy_problems(self.context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15000)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.goto("/login")
        self.page.get_by_label("Email").fill("owner@example.com")
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(re.compile(r"/sessions$"))

    def unexpected_requests(self) -> list[str]:
        """Requests the payload could have caused: the API (hx-get), or its broken image."""
        paths = [urlsplit(url).path for url in self.requests]
        return [path for path in paths if path.startswith("/api/") or path.endswith("/x")]

    def close(self) -> None:
        self.context.close()


def test_hostile_text_renders_as_text_and_fires_nothing(browser, live, hostile):
    watched = Watched(browser, live)
    page = watched.page
    pages = [
        "/sessions",
        f"/sessions/{hostile['session']}",
        "/messages",
        f"/bulk/{hostile['batch']}",
        "/bulk",
        "/keys",
        "/stats",
        "/account",
        "/webhooks",
    ]
    for path in pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    # On the session page, a message arriving re-fetches the fragment that shows it (htmx
    # processes swapped-in content): the payload comes in live, and still does nothing.
    page.goto(f"/sessions/{hostile['session']}")
    page.wait_for_function("() => document.body.dataset.socket === 'connected'")
    inbound = {"from": "919811113333", "message": PAYLOAD + " live"}
    url = f"{live}/api/simulator/sessions/{hostile['session']}/inbound"
    assert requests.post(url, json=inbound, headers=hostile["auth"]).ok
    page.get_by_text(PAYLOAD + " live").wait_for()
    page.wait_for_load_state("networkidle")
    assert page.locator(".bubble .text", has_text="<script>").count() >= 2

    assert watched.dialogs == []
    assert watched.unexpected_requests() == []
    assert watched.problems == []
    assert page.evaluate("document.querySelectorAll('main script, main img[src=x], main svg[onload]').length") == 0
    watched.close()


def test_htmx_runs_with_eval_off_and_requests_to_this_site_only(browser, live, hostile):
    watched = Watched(browser, live)
    page = watched.page
    config = page.evaluate(
        "() => ({allowEval: htmx.config.allowEval, allowScriptTags: htmx.config.allowScriptTags,"
        " selfRequestsOnly: htmx.config.selfRequestsOnly, indicatorStyles: htmx.config.includeIndicatorStyles,"
        " settled: htmx.config.attributesToSettle})"
    )
    assert config == {
        "allowEval": False,
        "allowScriptTags": False,
        "selfRequestsOnly": True,
        "indicatorStyles": False,
        "settled": ["class", "width", "height"],
    }
    assert page.evaluate("document.querySelectorAll('style').length") == 0  # htmx injected none
    assert watched.problems == []
    watched.close()


def test_the_policy_refuses_an_inline_script_and_the_tests_would_see_it(browser, live, hostile):
    """The check the browser tests rely on: a refused inline script shows up as a problem."""
    watched = Watched(browser, live)
    page = watched.page
    ran = page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__inlineRan = true";
            document.body.appendChild(script);
            return window.__inlineRan === true;
        }"""
    )
    assert ran is False
    page.wait_for_timeout(200)
    assert any("script-src" in problem for problem in watched.problems), watched.problems
    watched.close()
