"""The dashboard as a new user meets it, in real headless Chromium against `python app.py`."""

import re

import pytest

from tests.browser import chromium, screenshot_dir
from tests.live import embedded_server

PASSWORD = "a good long password"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # The first account of an embedded server is an Enterprise admin, so bulk send is open.
    with embedded_server(
        tmp_path_factory.mktemp("browser"), BULK_MIN_DELAY_MS="0", SIMULATOR_RECEIPT_SECONDS="0.3"
    ) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


def _new_page(browser, live):
    context = browser.new_context(base_url=live, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15000)
    return context, page


def _register(page, email: str) -> None:
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/sessions$"))


def test_a_new_user_pairs_a_session_and_sends_without_a_reload(browser, live, shots):
    context, page = _new_page(browser, live)
    page.goto("/")
    page.screenshot(path=str(shots / "landing.png"))
    _register(page, "owner@example.com")
    page.get_by_text("No sessions yet").wait_for()

    page.get_by_label("Name").fill("Shop phone")
    page.get_by_role("button", name="Create and show QR").click()
    page.wait_for_url(re.compile(r"/sessions/[0-9a-f-]{36}$"))
    qr = page.get_by_test_id("qr")
    qr.wait_for()
    assert qr.get_attribute("src").startswith("data:image/png;base64,")
    page.wait_for_function("document.body.dataset.socket === 'connected'")
    page.screenshot(path=str(shots / "session-qr.png"))

    page.evaluate("window.__stillTheSamePage = true")
    page.get_by_role("button", name="Simulate scan").click()
    page.get_by_test_id("connected").wait_for()
    assert re.search(r"Connected, phone \+1555\d{7}", page.get_by_test_id("connected").inner_text())
    assert page.evaluate("window.__stillTheSamePage") is True

    page.get_by_label("Phone number").fill("919876543210")
    page.get_by_label("Message", exact=True).fill("Hello <b>from</b> the dashboard")
    page.get_by_role("button", name="Send").click()
    page.get_by_test_id("send-result").wait_for()
    bubble = page.locator(".bubble.outbound").first
    bubble.wait_for()
    assert bubble.locator(".text").inner_text() == "Hello <b>from</b> the dashboard"
    page.locator(".bubble.outbound[data-status='read']").wait_for()
    assert page.evaluate("window.__stillTheSamePage") is True
    page.screenshot(path=str(shots / "session-connected.png"), full_page=True)

    page.goto("/sessions")
    page.get_by_test_id("status").first.wait_for()
    assert page.get_by_test_id("status").first.text_content().strip() == "connected"
    page.screenshot(path=str(shots / "sessions.png"))
    context.close()


def test_invalid_numbers_are_explained_inline(browser, live):
    context, page = _new_page(browser, live)
    page.goto("/login")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/sessions$"))
    page.locator(".session-card a").first.click()
    page.get_by_label("Phone number").fill("12345")
    page.get_by_label("Message", exact=True).fill("hi")
    page.get_by_role("button", name="Send").click()
    error = page.locator("#send-form .field-error")
    error.wait_for()
    assert "country code" in error.inner_text()
    assert page.get_by_label("Phone number").get_attribute("aria-invalid") == "true"
    context.close()


def test_another_user_sees_nothing_of_the_first(browser, live):
    context, page = _new_page(browser, live)
    _register(page, "neighbour@example.com")
    page.get_by_text("No sessions yet").wait_for()
    assert "Shop phone" not in page.content()
    context.close()
