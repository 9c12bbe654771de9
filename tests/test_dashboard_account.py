"""Dashboard accounts: log in and out, CSRF, password change and reset (emailed and by CLI)."""

import email
import email.policy
import re
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import pair_session, wait_for
from tests.live import free_port

PASSWORD = "correct horse battery"


def _csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def _login(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": _csrf(client, "/login")})


def test_log_in_and_out_with_the_api_account(app, client, account):
    response = _login(client, account.email)
    assert response.status_code == 302 and response.headers["Location"].endswith("/sessions")
    assert "No sessions yet" in client.get("/sessions").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/sessions").get_data(as_text=True)).group(1)
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/sessions").status_code == 302


def test_the_account_counts_messages_as_the_statistics_do(client, account, shop):
    """One sent and one failed (a number not on WhatsApp): "sent 1, failed 1" on both pages."""
    for to in ("919876543210", "919876540000"):
        client.post(f"/api/sessions/{shop}/send", json={"to": to, "message": "Hi"}, headers=account.headers)

    def totals():
        found = client.get("/api/messages/stats", headers=account.headers).get_json()["totals"]
        return found if (found["sent"], found["failed"]) == (1, 1) else None

    wait_for(totals, message="the statistics to count both messages")
    _login(client, account.email)
    page = client.get("/account").get_data(as_text=True)
    assert re.search(r'data-testid="account-sent">1<', page)
    assert re.search(r'data-testid="account-failed">1<', page)


def _register(client, email: str):
    form = {"email": email, "password": PASSWORD, "csrf_token": _csrf(client, "/register")}
    assert client.post("/register", data=form).status_code == 302
    return client.get("/sessions").get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", [{"FIRST_USER_IS_ADMIN": True}])
def test_a_new_account_is_told_its_plan_and_the_first_that_it_is_the_admin(app):
    # The README's curl walkthrough registers first; the dashboard's account comes second.
    first = _register(app.test_client(), "me@example.com")
    assert "As this server&#39;s first account you are its admin, on the Enterprise plan with every feature" in first
    second = _register(app.test_client(), "shop@example.com")
    assert "Your account is on the Free plan (1 session, without bulk send or webhooks)" in second
    assert "flask --app app users set-plan shop@example.com PLAN" in second
    assert "admin" not in second


def test_a_wrong_password_is_explained_on_the_form(client, account):
    page = _login(client, account.email, "not the password").get_data(as_text=True)
    assert "Invalid email or password" in page
    assert 'aria-invalid="true"' in page


def test_forms_without_a_valid_csrf_token_are_rejected(client, account):
    assert client.post("/login", data={"email": account.email, "password": PASSWORD}).status_code == 400
    _login(client, account.email)
    assert client.post("/sessions", data={"name": "No token"}).status_code == 400
    assert client.post("/sessions", data={"name": "Forged", "csrf_token": "forged"}).status_code == 400
    htmx = client.post("/account/token", headers={"HX-Request": "true"})
    assert htmx.status_code == 400
    assert "No token" not in client.get("/sessions").get_data(as_text=True)


def test_changing_the_password_logs_out_other_browsers(app, client, account):
    other_browser = app.test_client()
    _login(client, account.email)
    _login(other_browser, account.email)
    response = client.post(
        "/account",
        data={
            "current": PASSWORD,
            "new": "a brand new password",
            "confirm": "a brand new password",
            "csrf_token": _csrf(client, "/account"),
        },
    )
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other_browser.get("/account").status_code == 302
    assert (
        client.post("/api/login", json={"email": account.email, "password": "a brand new password"}).status_code == 200
    )


def test_the_account_page_shows_the_plan_usage_and_a_curl_with_the_own_session(client, account, shop):
    _login(client, account.email)
    page = client.get("/account").get_data(as_text=True)
    assert "Free plan" in page and "1 of 1" in page
    assert f"/api/sessions/{shop}/send" in page
    token_fragment = client.post(
        "/account/token", headers={"HX-Request": "true", "X-CSRFToken": _csrf(client, "/account")}
    ).get_data(as_text=True)
    token = re.search(r'<pre id="token-value">([^<]+)</pre>', token_fragment).group(1)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope.content.decode())
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def mailbox():
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    controller.stop()


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


def _forgot(client, email: str):
    return client.post("/forgot-password", data={"email": email, "csrf_token": _csrf(client, "/forgot-password")})


def test_forgot_password_emails_a_single_use_link(app, client, account, mailbox):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=mailbox.port, SMTP_STARTTLS=False)
    assert _forgot(client, account.email).status_code == 302
    assert mailbox.arrived.wait(10)
    body = email.message_from_string(mailbox.messages[0], policy=email.policy.default).get_content()
    link = re.search(r"(http://\S+/reset-password/\S+)", body).group(1)
    path = link.split("127.0.0.1:5000", 1)[1]
    form = {"new": "reset password 123", "confirm": "reset password 123", "csrf_token": _csrf(client, path)}
    assert client.post(path, data=form).status_code == 302
    assert client.post("/api/login", json={"email": account.email, "password": "reset password 123"}).status_code == 200
    used = client.get(path)
    assert used.status_code == 302 and used.headers["Location"].endswith("/forgot-password")


def test_forgot_password_is_limited_to_three_per_hour_per_email(client, account):
    for _ in range(3):
        assert _forgot(client, account.email).status_code == 302
    assert _forgot(client, account.email).status_code == 429
    assert _forgot(client, "someone-else@example.com").status_code == 302


def test_an_unknown_email_gets_the_same_answer(client, mailbox, app):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=mailbox.port, SMTP_STARTTLS=False)
    assert _forgot(client, "nobody@example.com").status_code == 302
    time.sleep(0.2)  # nothing may arrive: give a wrongly sent mail the time to show up
    assert mailbox.messages == []


def test_operators_can_print_a_reset_link(client, runner, account):
    result = runner.invoke(args=["users", "reset-link", account.email])
    assert result.exit_code == 0
    path = result.output.strip().split("127.0.0.1:5000", 1)[1]
    assert "Choose a new password" in client.get(path).get_data(as_text=True)


def test_the_account_and_sessions_pages_show_quota_usage(app, client, runtime, make_account, runner):
    from tests.dashboard import DashboardUser

    account = make_account(plan="starter")
    session_id = pair_session(client, account)
    for _ in range(2):
        client.post(
            f"/api/sessions/{session_id}/send", json={"to": "919876543210", "message": "Hi"}, headers=account.headers
        )
    DashboardUser(client, account)
    page = client.get("/account").get_data(as_text=True)
    assert "1000 messages a day (UTC)" in page
    assert re.search(r"<strong>2</strong> of 1000 messages\s+today \(UTC\) &middot; 998 left", page)
    assert '<meter min="0" max="1000" value="2"' in page

    runner.invoke(args=["plans", "set-quota", "starter", "--daily", "2"])
    sessions_page = client.get("/sessions").get_data(as_text=True)
    assert "The quota is used up" in sessions_page
