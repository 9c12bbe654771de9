"""The dashboard as a new user meets it, in real headless Chromium against `python app.py`."""

import io
import re
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from PIL import Image, ImageDraw

from tests.browser import chromium, policy_problems, screenshot_dir
from tests.fixtures import OGG, PDF, data_url
from tests.live import embedded_server

pytestmark = [pytest.mark.browser, pytest.mark.live_server]

PASSWORD = "a good long password"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # The first account of an embedded server is an Enterprise admin, so bulk send is open.
    # No per-minute ceiling to speak of (the bulk send takes seconds, not minutes), and two
    # messages to numbers not on WhatsApp are enough to pause a session.
    pace = {"PACE_PER_MINUTE": "600", "GOVERNOR_MIN_SAMPLE": "2"}
    # Webhook endpoints on loopback are allowed, for a delivery log to look at.
    with embedded_server(
        tmp_path_factory.mktemp("browser"),
        BULK_MIN_DELAY_MS="0",
        SIMULATOR_RECEIPT_SECONDS="0.3",
        ALLOW_PRIVATE_URLS="true",
        **pace,
    ) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


# For each browser context of the current test: what its Content-Security-Policy refused
# or its scripts threw. Every test ends with none.
PROBLEMS: list[list[str]] = []


@pytest.fixture(autouse=True)
def no_policy_problems():
    PROBLEMS.clear()
    yield
    found = [problem for problems in PROBLEMS for problem in problems]
    assert found == [], "a page broke the CSP or threw a script error:\n" + "\n".join(found)


def _new_page(browser, live, **options):
    context = browser.new_context(base_url=live, **({"viewport": {"width": 1280, "height": 860}} | options))
    PROBLEMS.append(policy_problems(context))
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
    page.wait_for_function("() => document.body.dataset.socket === 'connected'")
    page.screenshot(path=str(shots / "session-qr.png"))

    page.evaluate("window.__stillTheSamePage = true")
    page.get_by_role("button", name="Simulate scan").click()
    page.get_by_test_id("connected").wait_for()
    assert re.search(r"Connected, phone \+1555\d{7}", page.get_by_test_id("connected").inner_text())
    assert page.evaluate("window.__stillTheSamePage") is True

    page.locator("#send-form").get_by_label("Phone number").fill("919876543210")
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
    page.wait_for_url(re.compile(r"/sessions/[0-9a-f-]{36}$"))
    page.locator("#send-form").get_by_label("Phone number").fill("12345")
    page.get_by_label("Message", exact=True).fill("hi")
    page.get_by_role("button", name="Send").click()
    error = page.locator("#send-form .field-error")
    error.wait_for()
    assert "country code" in error.inner_text()
    assert page.locator("#send-form").get_by_label("Phone number").get_attribute("aria-invalid") == "true"
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
    page.wait_for_function(
        "() => document.querySelector('[data-testid=batch-status]').textContent.trim() === 'finished'"
    )
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
    context, page = _new_page(browser, live, viewport={"width": 390, "height": 844}, is_mobile=True)
    _login(page)
    page.locator(".session-card a").first.click()
    page.get_by_test_id("connected").wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    page.screenshot(path=str(shots / "phone-session.png"), full_page=True)
    page.goto("/hosts")  # the first account is this server's admin
    page.locator("[data-host='embedded'] meter").wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the hosts page is {width}px wide on a 390px screen"
    page.screenshot(path=str(shots / "phone-hosts.png"), full_page=True)
    context.close()


def test_the_owner_paces_schedules_and_resumes_a_session(browser, live, shots):
    context, page = _new_page(browser, live, timezone_id="Asia/Kolkata")
    _login(page)
    page.get_by_label("Name").fill("Promotions")
    page.get_by_role("button", name="Create and show QR").click()
    page.get_by_role("button", name="Simulate scan").click()
    page.get_by_test_id("connected").wait_for()
    status = page.get_by_test_id("pace-status")
    assert "at most 600 a minute and 1000 a day" in status.inner_text()

    # The pace: a refused value is explained beside its field, then the pace is saved.
    page.get_by_label("At most per minute").fill("0")
    page.get_by_role("button", name="Save pace").click()
    page.locator("#per_minute-error").wait_for()
    assert "At most per minute must be a whole number" in page.locator("#per_minute-error").inner_text()
    page.get_by_label("Minimum gap (seconds)").fill("1")
    page.get_by_label("Random extra (seconds)").fill("1")
    page.get_by_label("At most per minute").fill("20")
    page.get_by_label("At most per day").fill("300")
    page.get_by_label("Warm-up: daily ceilings after linking").fill("20, 50, 100")
    now = datetime.now(ZoneInfo("Asia/Kolkata"))
    quiet = now + timedelta(hours=3)  # quiet hours later today (or tonight), not now
    page.get_by_label("Quiet hours from").fill(f"{quiet:%H}:00")
    page.get_by_label("Quiet hours until").fill(f"{quiet + timedelta(hours=2):%H}:00")
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")  # Asia/Kolkata (or Asia/Calcutta)
    page.get_by_role("button", name=f"Use this browser's time zone ({zone})").click()
    assert page.get_by_label("Time zone").input_value() == zone
    page.get_by_role("button", name="Save pace").click()
    page.get_by_test_id("pace-saved").wait_for()
    status.filter(has_text="at most 20 a minute and 300 a day").wait_for()
    assert "warm-up day 1 of 3: at most 20 today" in status.inner_text()
    assert f"({zone})" in status.inner_text()

    # A message for tomorrow at 10:00 in this browser's time zone.
    tomorrow = now.date() + timedelta(days=1)
    page.locator("#send-form").get_by_label("Phone number").fill("919876543210")
    page.get_by_label("Message", exact=True).fill("Your order ships tomorrow")
    page.get_by_label("Send at (optional)").fill(f"{tomorrow}T10:00")
    page.get_by_role("button", name="Send").click()
    assert "Scheduled: the message to +919876543210" in page.get_by_test_id("send-result").inner_text()
    page.locator("[data-testid=pace-status][data-waiting-for=scheduled]").wait_for()
    assert page.get_by_test_id("pace-scheduled").inner_text() == "1"
    page.locator("#pace").screenshot(path=str(shots / "pace.png"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Scheduled").click()
    row = page.get_by_test_id("scheduled-row")
    assert "Your order ships tomorrow" in row.inner_text() and "Promotions" in row.inner_text()
    when = page.get_by_test_id("scheduled-when")
    assert when.get_attribute("datetime") == f"{tomorrow}T04:30:00.000Z"  # 10:00 in India is 04:30 UTC
    shown = page.locator("[data-testid=scheduled-when][title]")  # rewritten by app.js
    assert "10:00" in shown.inner_text() and "UTC" not in shown.inner_text()  # in the reader's zone
    page.screenshot(path=str(shots / "scheduled.png"))
    row.get_by_text("Reschedule").click()
    assert row.get_by_label(re.compile("New time")).input_value() == f"{tomorrow}T10:00"
    row.get_by_role("button", name="Cancel").click()
    page.get_by_test_id("no-scheduled").wait_for()

    # Two messages to numbers not on WhatsApp: the governor pauses the session, and the
    # banner appears without a reload; one button resumes it.
    page.go_back()
    page.locator("body[data-socket=connected]").wait_for(state="attached")
    page.evaluate("window.__stillTheSamePage = true")
    for number in ("919800000000", "919811110000"):
        page.locator("#send-form").get_by_label("Phone number").fill(number)
        page.get_by_label("Message", exact=True).fill("Hello from our new shop")
        page.get_by_role("button", name="Send").click()
        page.get_by_test_id("send-result").wait_for()
    alert = page.get_by_test_id("paused-alert")
    alert.wait_for()
    assert "Sending from Promotions is paused" in alert.inner_text()
    assert "went to numbers not on WhatsApp" in alert.inner_text()
    page.get_by_test_id("pace-paused").wait_for()
    assert page.evaluate("window.__stillTheSamePage") is True
    page.goto("/bulk")
    alert.wait_for()
    alert.get_by_role("button", name="Resume sending").click()
    alert.wait_for(state="detached")
    page.goto(page.url)
    assert page.get_by_test_id("paused-alert").count() == 0
    context.close()


def test_another_user_sees_nothing_of_the_first(browser, live):
    context, page = _new_page(browser, live)
    _register(page, "neighbour@example.com")
    page.get_by_text("No sessions yet").wait_for()
    for path in ("/sessions", "/messages", "/scheduled", "/bulk", "/stats"):
        page.goto(path)
        content = page.content()
        assert "Shop phone" not in content and "Our shop opens" not in content, path
        assert "Promotions" not in content, path
    context.close()


def _photo() -> str:
    """A small picture as a data URL, like one a customer would send."""
    picture = Image.new("RGB", (320, 200), "#cfe8f7")
    drawing = ImageDraw.Draw(picture)
    drawing.rectangle((0, 140, 320, 200), fill="#7fb069")
    drawing.ellipse((230, 20, 290, 80), fill="#f6c945")
    drawing.rectangle((70, 70, 170, 150), fill="#c0392b")
    drawing.polygon([(60, 72), (120, 30), (180, 72)], fill="#7b2d26")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return data_url(buffer.getvalue(), "image/png")


def _until(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


def test_the_message_log_shows_pictures_polls_and_details(browser, live, shots):
    context, page = _new_page(browser, live)
    _login(page)
    session_id = page.locator(".session-card a").first.get_attribute("href").rsplit("/", 1)[1]
    login = page.request.post("/api/login", data={"email": "owner@example.com", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {login.json()['token']}"}

    def api(path: str, body: dict | None = None) -> dict:
        answer = page.request.post(path, data=body, headers=auth) if body else page.request.get(path, headers=auth)
        assert answer.ok, answer.text()
        return answer.json()

    inbound = f"/api/simulator/sessions/{session_id}/inbound"

    def arrive(body: dict) -> str:
        """A customer sends `body`; its message id once it is stored."""
        before = api("/api/messages?direction=inbound")["total"]
        api(inbound, {"from": "919811112222", **body})
        _until(lambda: api("/api/messages?direction=inbound")["total"] > before, "the message to arrive")
        return api("/api/messages?direction=inbound&limit=1")["messages"][0]["messageId"]

    send = f"/api/sessions/{session_id}/send"
    poll = api(send, {"to": "919811112222", "poll": {"question": "Deliver on Sunday?", "options": ["Yes", "No"]}})
    poll = poll["messageId"]
    price_list = {"url": data_url(PDF, "application/pdf"), "filename": "price-list.pdf"}
    api(send, {"to": "919811112222", "document": price_list, "caption": "Our prices for June"})
    arrive({"location": {"latitude": 12.9716, "longitude": 77.5946, "name": "Gate 2, MG Road"}})
    voice = arrive({"audio": {"url": data_url(OGG, "audio/ogg"), "ptt": True}})
    photo = arrive({"image": {"data": _photo(), "caption": "Is this one in stock?"}})
    page.goto("/messages")
    page.locator("body[data-socket=connected]").wait_for(state="attached")

    # (Polled from here: the page's CSP refuses the eval that wait_for_function would need.)
    thumbnail = page.locator(f"[data-message-id='{photo}'] img[data-testid=thumbnail]")
    _until(lambda: thumbnail.evaluate("(img) => img.complete && img.naturalWidth > 0"), "the thumbnail to load")
    assert thumbnail.evaluate("(img) => img.naturalWidth") == 320
    box = thumbnail.bounding_box()
    assert box["width"] <= 16 * 16 and box["height"] <= 12 * 16  # kept small by the stylesheet

    # Clicking a message's Details expands them in place; they stay open, and a voice note
    # stays the same player (playing on), while the log refreshes itself for a vote.
    player = page.locator(f"[data-message-id='{voice}'] audio[data-testid=player]")
    player.evaluate("(audio) => { audio.keptAcrossRefresh = true; }")
    page.locator(f"[data-message-id='{photo}'] [data-testid=details-toggle]").click()
    details = page.locator(f"[data-message-id='{photo}'] [data-testid=message-detail]")
    details.wait_for()
    assert "image/png" in details.inner_text() and "Is this one in stock?" in details.inner_text()
    api(inbound, {"from": "919811112222", "vote": {"messageId": poll, "options": ["Yes"]}})
    api(inbound, {"from": "447911123456", "reaction": {"messageId": poll, "emoji": "👍"}})
    counts = page.locator(f"[data-message-id='{poll}'] [data-testid=poll-count]")
    counts.filter(has_text="1").wait_for()
    page.locator(f"[data-message-id='{poll}'] [data-testid=reaction]").wait_for()
    assert counts.all_inner_texts() == ["1", "0"]
    assert details.is_visible()
    assert player.evaluate("(audio) => audio.keptAcrossRefresh === true && audio.controls")
    assert page.evaluate("window.location.pathname") == "/messages"

    page.locator(f"[data-message-id='{photo}'] [data-testid=details-toggle]").click()
    details.wait_for(state="hidden")
    page.evaluate("window.scrollTo(0, 0)")
    log = page.locator("section[aria-label='Message log']").bounding_box()
    clip = {"x": 0, "y": log["y"] - 16, "width": 1280, "height": min(log["height"] + 32, 900)}
    page.screenshot(path=str(shots / "messages-media.png"), clip=clip, full_page=True)
    context.close()


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

# What a page must not do, measured in the browser: scroll sideways (the page, or anything in it
# that scrolls, but for the code samples of /docs, which Redoc draws), let two cards touch (one
# above the other, or side by side), or cut off any of the chart's day and value labels.
LAYOUT = """(path) => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push(`the page is ${document.documentElement.scrollWidth}px wide on a ${width}px screen`);
  }
  for (const element of document.querySelectorAll(path === "/docs" ? ".docs-bar *" : "body *")) {
    const overflow = getComputedStyle(element).overflowX;
    if ((overflow === "auto" || overflow === "scroll") && element.scrollWidth > element.clientWidth + 1) {
      found.push(`${element.tagName.toLowerCase()}.${element.className} scrolls sideways`);
    }
  }
  const cards = [...document.querySelectorAll(".card")]
    .filter((card) => card.offsetParent && !card.parentElement.closest(".card"))
    .map((card) => [card.textContent.replace(/\s+/g, " ").trim().slice(0, 30), card.getBoundingClientRect()]);
  for (const [a, boxA] of cards) {
    for (const [b, boxB] of cards) {
      const across = Math.min(boxA.right, boxB.right) - Math.max(boxA.left, boxB.left);
      const down = Math.min(boxA.bottom, boxB.bottom) - Math.max(boxA.top, boxB.top);
      const gap = across > 0 ? boxB.top - boxA.bottom : down > 0 ? boxB.left - boxA.right : -1;
      if (gap >= 0 && gap < 15.5) found.push(`two cards are ${gap}px apart: "${a}" and "${b}"`);
    }
  }
  for (const label of document.querySelectorAll(".chart .day-label tspan:not(.day-date), .chart .tick-label")) {
    const box = label.getBoundingClientRect();
    if (box.width === 0 || box.left < 0 || box.right > width) found.push(`"${label.textContent}" is cut off`);
  }
  return found;
}"""


def _api(live: str, method: str, path: str, auth: dict | None = None, body: dict | None = None) -> dict:
    answer = requests.request(method, f"{live}{path}", json=body, headers=auth or {}, timeout=15)
    assert answer.ok, answer.text
    return answer.json()


def _layout_problems(page, paths) -> list[str]:
    """Every page of `paths`, loaded and settled: what LAYOUT finds, and console errors."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    found = []
    for path in paths:
        errors.clear()
        page.goto(path)
        page.wait_for_load_state("networkidle")
        found += [f"{path}: {problem}" for problem in page.evaluate(LAYOUT, path) + errors]
    return found


def test_every_page_fits_a_phone_screen_without_errors(browser, live, shots):
    # Something on every page: a scheduled message, a key, a webhook with a failed delivery, a
    # session waiting for its scan (whose QR link is the page a phone opens).
    login = _api(live, "POST", "/api/login", body={"email": "owner@example.com", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {login['token']}"}
    sessions = _api(live, "GET", "/api/sessions", auth)["sessions"]
    shop = next(session["sessionId"] for session in sessions if session["name"] == "Shop phone")
    tomorrow = f"{datetime.now(ZoneInfo('UTC')).date() + timedelta(days=1)}T10:00:00Z"
    later = {"to": "919876543210", "message": "Your order ships tomorrow morning", "sendAt": tomorrow}
    _api(live, "POST", f"/api/sessions/{shop}/send", auth, later)
    _api(live, "POST", "/api/keys", auth, {"name": "Billing server", "mode": "live", "sessionIds": [shop]})
    hook = _api(live, "POST", "/api/webhooks", auth, {"url": "http://127.0.0.1:9/wagate"})["id"]
    _api(live, "POST", f"/api/webhooks/{hook}/test", auth)
    waiting = _api(live, "POST", "/api/sessions", auth, {"name": "Front desk"})["sessionId"]
    pair = urlsplit(_api(live, "GET", f"/api/sessions/{waiting}/qr", auth)["pairUrl"]).path
    message = _api(live, "GET", "/api/messages?limit=1", auth)["messages"][0]["messageId"]

    context, page = _new_page(browser, live, **PHONE)
    problems = _layout_problems(page, ["/", "/login", "/register", "/forgot-password", "/docs", pair])
    _login(page)
    page.goto("/bulk")
    batch = page.locator("[data-testid=batch-row] a").first.get_attribute("href")
    pages = [
        "/sessions",
        f"/sessions/{shop}",
        f"/sessions/{waiting}",
        "/messages",
        f"/messages/{message}",
        "/scheduled",
        "/bulk",
        batch,
        "/stats",
        "/keys",
        "/webhooks",
        "/account",
    ]
    problems += _layout_problems(page, pages)
    for path in pages:  # one row of menu, not five
        page.goto(path)
        height = page.locator(".topbar").bounding_box()["height"]
        if height > 60 or page.get_by_role("navigation", name="Main").is_visible():
            problems.append(f"{path}: the menu takes {height}px")
    context.close()

    # On a desktop the same pages' cards stand apart too, and the landing page's line up.
    context, page = _new_page(browser, live)
    problems += _layout_problems(page, ["/"])
    tops = {card.bounding_box()["y"] for card in page.locator(".features .card").all()}
    if len(tops) != 1:
        problems.append(f"/: the feature cards start at {sorted(tops)}")
    _login(page)
    problems += _layout_problems(page, pages)
    context.close()
    assert problems == [], "\n".join(problems)

    # The menu opens over the page, and takes you there.
    context, page = _new_page(browser, live, **PHONE)
    _login(page)
    for path, section, shot in (
        ("/messages", "Message log", "phone-messages.png"),
        ("/stats", "Last 7 days", "phone-statistics.png"),
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        page.get_by_role("region", name=section).evaluate("(element) => element.scrollIntoView()")
        page.screenshot(path=str(shots / shot))
    page.get_by_text("Menu", exact=True).click()
    scheduled = page.get_by_role("navigation", name="Main").get_by_role("link", name="Scheduled")
    scheduled.wait_for()
    page.screenshot(path=str(shots / "phone-menu.png"))
    scheduled.click()
    page.wait_for_url(re.compile(r"/scheduled$"))
    context.close()
