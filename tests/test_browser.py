"""The dashboard as a new user meets it, in real headless Chromium against `python app.py`."""

import re
import time

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


def _login(page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/sessions$"))


def test_invalid_numbers_are_explained_inline(browser, live):
    context, page = _new_page(browser, live)
    _login(page)
    page.locator(".session-card a").first.click()
    page.get_by_label("Phone number").fill("12345")
    page.get_by_label("Message", exact=True).fill("hi")
    page.get_by_role("button", name="Send").click()
    error = page.locator("#send-form .field-error")
    error.wait_for()
    assert "country code" in error.inner_text()
    assert page.get_by_label("Phone number").get_attribute("aria-invalid") == "true"
    context.close()


def test_a_20_number_bulk_send_shows_its_progress_to_the_end(browser, live, shots):
    context, page = _new_page(browser, live)
    _login(page)
    page.goto("/bulk")
    numbers = [f"9198765{i:05d}" for i in range(1, 21)]
    page.get_by_label("Numbers").fill("\n".join([*numbers, "12345", numbers[0]]))
    page.get_by_label("Message", exact=True).fill("Our shop opens at 9 tomorrow")
    page.get_by_label("Delay between messages (ms)").fill("100")
    page.get_by_role("button", name="Preview").click()
    page.get_by_test_id("count-valid").wait_for()
    assert page.get_by_test_id("count-valid").inner_text() == "20"
    assert page.get_by_test_id("count-invalid").inner_text() == "1"
    assert page.get_by_test_id("count-duplicates").inner_text() == "1"
    page.screenshot(path=str(shots / "bulk-preview.png"), full_page=True)
    page.get_by_test_id("bulk-send").click()
    page.wait_for_url(re.compile(r"/bulk/[0-9a-f-]{36}$"))
    page.evaluate("window.__stillTheSamePage = true")
    progress = page.get_by_test_id("bulk-progress")
    progress.wait_for()
    page.wait_for_function(
        "() => { const bar = document.querySelector('[data-testid=bulk-progress]');"
        " return bar && bar.dataset.done === '20' && bar.dataset.total === '20'; }",
        timeout=30000,
    )
    page.wait_for_function("document.querySelector('[data-testid=batch-status]').textContent.trim() === 'finished'")
    assert page.evaluate("window.__stillTheSamePage") is True
    assert page.locator("[data-testid=result-row][data-status=sent]").count() == 20
    page.screenshot(path=str(shots / "bulk-progress.png"), full_page=True)
    context.close()


def test_statistics_and_the_message_log_show_the_traffic(browser, live, shots):
    context, page = _new_page(browser, live)
    _login(page)
    # Aggregation is debounced by a few seconds: look again, as a person would, until it shows.
    sent_today = "() => Math.max(...[...document.querySelectorAll('[data-testid=stats-chart] [data-series=sent]')]"
    sent_today += ".map(bar => Number(bar.dataset.value)))"
    deadline = time.monotonic() + 30
    while True:
        page.goto("/stats")
        page.get_by_test_id("stats-chart").wait_for()
        if page.evaluate(sent_today) >= 21 or time.monotonic() > deadline:
            break
        page.wait_for_timeout(1000)
    assert page.evaluate(sent_today) >= 21
    assert page.locator("[data-testid=stats-chart] text").filter(has_text=re.compile(r"\w{3}")).count() >= 7
    page.screenshot(path=str(shots / "statistics.png"), full_page=True)
    page.goto("/messages")
    page.get_by_text("Our shop opens at 9 tomorrow").first.wait_for()
    assert "&lt;b&gt;from&lt;/b&gt;" in page.content()
    page.screenshot(path=str(shots / "messages.png"))
    page.goto("/account")
    page.get_by_role("button", name="Create an API token").click()
    page.locator("#token-value").wait_for()
    page.screenshot(path=str(shots / "account.png"), full_page=True)
    context.close()


def test_the_dashboard_works_on_a_phone_screen(browser, live, shots):
    context = browser.new_context(base_url=live, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    _login(page)
    page.locator(".session-card a").first.click()
    page.get_by_test_id("connected").wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    page.screenshot(path=str(shots / "phone-session.png"), full_page=True)
    context.close()


def test_another_user_sees_nothing_of_the_first(browser, live):
    context, page = _new_page(browser, live)
    _register(page, "neighbour@example.com")
    page.get_by_text("No sessions yet").wait_for()
    for path in ("/sessions", "/messages", "/bulk", "/stats"):
        page.goto(path)
        content = page.content()
        assert "Shop phone" not in content and "Our shop opens" not in content, path
    context.close()
