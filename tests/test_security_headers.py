"""Browser hardening as the server sends it: login cookie flags, the Content-Security-Policy
and its companions on every page, pages with nothing inline for the policy to refuse, and
CSRF on every form and htmx request."""

from __future__ import annotations

import json
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest

from blueprints.security import POLICY
from extensions import csrf
from tests.dashboard import DashboardUser, csrf_token
from tests.helpers import pair_session

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _set_cookie(response, name: str = "session") -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    return cookie


def _log_in(client, account):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": account.email, "password": account.password, "csrf_token": token})


def test_the_login_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(client, account):
    cookie = _set_cookie(_log_in(client, account))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


@pytest.mark.parametrize("config_overrides", [{"PUBLIC_URL": "https://wa.example.com"}])
def test_the_login_cookie_is_secure_when_the_public_url_is_https(client, account):
    cookie = _set_cookie(_log_in(client, account))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _directives(header: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


class _Inline(HTMLParser):
    """Whatever in a page the policy would refuse: inline scripts, handlers, styles, js: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.forms: list[dict] = []
        self.body: dict = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not attributes.get("src"):
                self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "form":
            self.forms.append({"attrs": attributes, "inputs": []})
        if tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(attributes)
        if tag == "body":
            self.body = attributes
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") or name.startswith(("hx-on", "data-hx-on")):
                self.found.append(f"<{tag} {name}=...>")
            if name == "style":
                self.found.append(f"<{tag} style=...>")
            if value.startswith("javascript:") or (name in ("hx-vals", "hx-vars") and value.startswith("js:")):
                self.found.append(f"<{tag} {name}={value[:30]}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script: {data.strip()[:40]}")


@pytest.fixture
def config_overrides():
    return {"ALLOW_PRIVATE_URLS": True}


@pytest.fixture
def owner(client, runtime, make_account):
    """A logged-in dashboard user with one of each thing a page shows, and their ids."""
    account = make_account(plan="enterprise")
    session_id = pair_session(client, account)
    auth = account.headers
    sent = client.post(f"/api/sessions/{session_id}/send", json={"to": "919876543210", "message": "hi"}, headers=auth)
    batch = client.post(
        "/api/whatsapp/bulk-send", json={"contacts": ["919876543211"], "message": "hi", "delay": 0}, headers=auth
    ).get_json()
    client.post("/api/keys", json={"name": "CI"}, headers=auth)
    webhook = client.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=auth).get_json()
    browser = client.application.test_client()
    user = DashboardUser(browser, account)
    ids = {"session_id": session_id, "id": session_id, "batch_id": batch["batchId"], "webhook_id": webhook["id"]}
    return user, ids | {"message_id": sent.get_json()["messageId"]}


# Pages whose URL takes something other than an id of the user's own.
NOT_PAGES = {"static", "dashboard.reset_password_page", "simulator.pair_page"}


def _pages(app, ids: dict) -> list[str]:
    """Every GET route outside the JSON API, filled with the user's own ids."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or rule.rule.startswith(("/api/", "/healthz")):
            continue
        missing = rule.arguments - ids.keys()
        assert not missing, f"{rule.rule}: add its {missing} to the ids this test fills in"
        urls.append(re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: ids[m.group(1)], rule.rule))
    return urls


def _check_policy(response, url: str) -> None:
    policy = _directives(response.headers["Content-Security-Policy"])
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"], url
    assert policy["script-src"] == "'self'", url
    assert (policy["object-src"], policy["base-uri"], policy["frame-ancestors"]) == ("'none'",) * 3, url
    assert "'unsafe-inline'" not in policy.get("style-src", "") or url.startswith("/docs"), url
    assert response.headers["X-Frame-Options"] == "DENY", url


def test_every_page_carries_the_policy_and_nothing_inline(app, client, owner):
    user, ids = owner
    checked = 0
    for url in _pages(app, ids) + ["/no-such-page", "/sim/pair/x/y"]:
        for htmx in (False, True):
            with user.client.get(url, headers={"HX-Request": "true"} if htmx else {}) as response:
                assert response.headers["X-Content-Type-Options"] == "nosniff", url
                assert response.headers["Referrer-Policy"] == "same-origin", url
                if response.mimetype != "text/html":
                    continue
                _check_policy(response, url)
                page = _Inline()
                page.feed(response.get_data(as_text=True))
                assert page.found == [], (url, htmx, page.found)
                checked += 1
    assert checked >= 30
    # Logged out: the landing, login, register and error pages.
    anonymous = app.test_client()
    for url in ("/", "/login", "/register", "/forgot-password", "/no-such-page", "/reset-password/bad"):
        response = anonymous.get(url, follow_redirects=True)
        _check_policy(response, url)
        page = _Inline()
        page.feed(response.get_data(as_text=True))
        assert page.found == [], (url, page.found)


def test_json_answers_carry_the_headers_too(client, account):
    for response in (client.get("/api/sessions", headers=account.headers), client.get("/api/sessions")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_policy_names_only_this_site(client):
    policy = _directives(client.get("/login").headers["Content-Security-Policy"])
    assert policy == POLICY
    assert all("*" not in value and "http" not in value for value in policy.values())


INLINE_IN_TEMPLATES = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "an event handler attribute": re.compile(r"\s(?:data-)?(?:on[a-z]+|hx-on[:\w-]*)\s*=", re.I),
    "a style attribute": re.compile(r"\sstyle\s*=", re.I),
    "a <style> element": re.compile(r"<style[\s>]", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
}


def test_no_template_has_anything_inline_for_the_policy_to_refuse():
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for what, pattern in INLINE_IN_TEMPLATES.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{template.relative_to(TEMPLATES)}:{line}: {what}")
    assert found == []


def test_htmx_is_configured_for_the_policy_on_every_page(client):
    html = client.get("/login").get_data(as_text=True)
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html)
    assert meta, "no htmx-config meta tag"
    config = json.loads(meta.group(1))
    assert config["allowEval"] is False and config["selfRequestsOnly"] is True
    assert config["includeIndicatorStyles"] is False and config["allowScriptTags"] is False
    assert "style" not in config["attributesToSettle"]


def test_every_form_and_every_htmx_request_carries_the_csrf_token(app, client, owner):
    user, ids = owner
    forms = 0
    for url in _pages(app, ids):
        with user.client.get(url) as response:
            if response.mimetype != "text/html" or response.status_code != 200:
                continue
            html = response.get_data(as_text=True)
        page = _Inline()
        page.feed(html)
        if page.body:  # a whole page: htmx sends the header from <body hx-headers>
            assert f'"X-CSRFToken": "{csrf_token(html)}"' in page.body["hx-headers"], url
        for form in page.forms:
            if form["attrs"].get("method", "get").lower() != "post":
                continue
            forms += 1
            tokens = [i for i in form["inputs"] if i.get("name") == "csrf_token" and i.get("value")]
            assert tokens, (url, form["attrs"])
    assert forms >= 5


CSRF_REFUSAL = re.compile(r"The CSRF (session )?tokens? (is|are|do|has)")


def test_every_dashboard_post_without_the_csrf_token_is_refused(app, client, owner):
    user, _ = owner
    # Other products' JSON APIs (the dialects) take bearer keys, never cookies: CSRF-exempt, as /api/ is.
    api_blueprints = {blueprint.name for blueprint in csrf._exempt_blueprints}
    assert "dashboard" not in api_blueprints
    posts = [
        rule
        for rule in app.url_map.iter_rules()
        # Not the API (the native one, and other products' dialects such as Wallm's /v1).
        if "POST" in rule.methods
        and not rule.rule.startswith(("/api/", "/sim/", "/v1/"))
        and rule.endpoint.partition(".")[0] not in api_blueprints
    ]
    posts.sort(key=lambda rule: rule.endpoint == "dashboard.logout")  # stay logged in until the end
    assert len(posts) >= 20
    for rule in posts:
        url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(uuid.uuid4()), rule.rule)
        for headers in ({}, {"HX-Request": "true"}, {"X-CSRFToken": "forged"}):
            response = user.client.post(url, data={"name": "x"}, headers=headers)
            assert response.status_code == 400, (rule.rule, headers)
            assert CSRF_REFUSAL.search(response.get_data(as_text=True)), rule.rule
        # With the page's token, the same request gets past the CSRF check (to its own answer).
        token = csrf_token(user.client.get("/login").get_data(as_text=True))
        accepted = user.client.post(url, data={"name": "x"}, headers={"X-CSRFToken": token})
        assert not CSRF_REFUSAL.search(accepted.get_data(as_text=True)), rule.rule


def test_the_login_cookie_does_not_authenticate_the_json_api(client, account):
    DashboardUser(client, account)
    assert client.get("/sessions").status_code == 200
    for method, url in (("GET", "/api/me"), ("POST", "/api/sessions"), ("POST", "/api/keys")):
        response = client.open(url, method=method, json={"name": "x"})
        assert (response.status_code, response.get_json()["code"]) == (401, "AUTH_REQUIRED"), url
