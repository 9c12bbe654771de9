"""The dashboard's scheduled sends: a test message with a time, the Scheduled page with its
reschedule and cancel buttons, and a bulk send that starts later."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from tests.dashboard import DashboardUser
from tests.helpers import wait_for
from tests.test_dashboard_bulk import Browser

CONTACT = "919876543210"


def _local(moment: datetime, zone: str) -> str:
    """What a datetime-local input sends for `moment` in a browser in `zone`."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def _tomorrow_at_ten(zone: str) -> datetime:
    day = datetime.now(ZoneInfo(zone)).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=ZoneInfo(zone))


def _scheduled(client, account) -> list[dict]:
    return client.get("/api/messages/scheduled", headers=account.headers).get_json()["messages"]


def _send_later(user: DashboardUser, session_id: str, send_at: str, timezone: str, message: str = "Happy birthday!"):
    data = {"to": CONTACT, "message": message, "send_at": send_at, "timezone": timezone}
    return user.htmx("POST", f"/sessions/{session_id}/send", data=data)


def test_a_test_message_with_a_time_is_scheduled_in_the_browsers_time_zone(client, account, shop):
    user = DashboardUser(client, account)
    page = client.get(f"/sessions/{shop}").get_data(as_text=True)
    assert 'type="datetime-local"' in page and 'name="timezone" type="hidden"' in page
    assert "data-browser-timezone" in page

    at = _tomorrow_at_ten("Asia/Kolkata")
    answer = _send_later(user, shop, _local(at, "Asia/Kolkata"), "Asia/Kolkata")
    html = answer.get_data(as_text=True)
    assert answer.headers["HX-Trigger"] == f"wa-messages-{shop}"
    assert "Scheduled: the message to +919876543210 goes at" in html
    expected = at.astimezone(UTC)
    assert f'<time datetime="{expected:%Y-%m-%dT%H:%M:%S}.000Z" data-local="minutes">' in html
    [listed] = _scheduled(client, account)
    assert (listed["message"], listed["sendAt"]) == ("Happy birthday!", f"{expected:%Y-%m-%dT%H:%M:%S}.000Z")
    # The engine host lines the message up in the session's queue a moment later.
    card = wait_for(
        lambda: (
            'data-waiting-for="scheduled"' in (html := client.get(f"/sessions/{shop}/pace").get_data(as_text=True))
            and html
        )
    )
    assert 'data-testid="pace-scheduled">1<' in card and 'data-testid="pace-waiting">0<' in card


def test_without_the_browsers_zone_the_time_is_the_sessions(client, account, shop):
    user = DashboardUser(client, account)
    client.put(f"/api/sessions/{shop}/pace", json={"timezone": "America/New_York"}, headers=account.headers)
    at = _tomorrow_at_ten("America/New_York")
    _send_later(user, shop, _local(at, "America/New_York"), "")
    [listed] = _scheduled(client, account)
    assert listed["sendAt"] == f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.000Z"


def test_a_time_in_the_past_or_too_far_ahead_is_refused_beside_the_field(client, account, shop):
    user = DashboardUser(client, account)
    for when, error in (
        (datetime.now(UTC) - timedelta(hours=2), "That time is in the past"),
        (datetime.now(UTC) + timedelta(days=400), "That time is more than a year ahead"),
    ):
        html = _send_later(user, shop, _local(when, "UTC"), "UTC").get_data(as_text=True)
        assert f'<p class="field-error" id="send_at-error">{error}</p>' in html
        assert 'aria-describedby="send_at-error" aria-invalid="true" id="send_at"' in html
    assert _scheduled(client, account) == []


def test_a_refused_number_is_explained_in_the_forms_words(client, account, shop):
    user = DashboardUser(client, account)
    data = {"to": "12", "message": "Hello", "send_at": "", "timezone": "UTC"}
    html = user.htmx("POST", f"/sessions/{shop}/send", data=data).get_data(as_text=True)
    assert "The phone number must be a phone number with country code" in html
    assert "'to'" not in html


def test_the_scheduled_page_lists_moves_and_cancels_messages(client, account, shop):
    user = DashboardUser(client, account)
    assert 'data-testid="no-scheduled"' in client.get("/scheduled").get_data(as_text=True)
    first, second = _tomorrow_at_ten("UTC"), _tomorrow_at_ten("UTC") + timedelta(hours=2)
    _send_later(user, shop, _local(second, "UTC"), "UTC", message="Your order is ready")
    _send_later(user, shop, _local(first, "UTC"), "UTC", message="Happy birthday!")

    page = client.get("/scheduled").get_data(as_text=True)
    assert 'aria-current="page">Scheduled</a>' in page
    assert re.findall(r'<td class="text"[^>]*>([^<]+)</td>', page) == [
        "Happy birthday!",
        "Your order is ready",
    ]  # soonest first
    assert f'datetime="{first:%Y-%m-%dT%H:%M:%S}.000Z"' in page and f"{first:%Y-%m-%d %H:%M} UTC" in page
    assert 'hx-trigger="wa-messages from:body throttle:2s, wa-resync from:body"' in page
    birthday = next(m for m in _scheduled(client, account) if m["message"] == "Happy birthday!")["messageId"]

    later = first + timedelta(days=1)
    moved = user.htmx(
        "POST",
        f"/scheduled/{birthday}/move",
        data={"send_at": _local(later, "Europe/Berlin"), "timezone": "Europe/Berlin"},
    )
    html = moved.get_data(as_text=True)
    assert html.startswith('<div id="scheduled-list"') and "Rescheduled the message to +919876543210." in html
    assert re.findall(r'<td class="text"[^>]*>([^<]+)</td>', html) == ["Your order is ready", "Happy birthday!"]
    assert 'class="row-changed"' in html
    assert {m["message"]: m["sendAt"] for m in _scheduled(client, account)}["Happy birthday!"] == (
        f"{later.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.000Z"
    )

    refused = user.htmx("POST", f"/scheduled/{birthday}/move", data={"send_at": "2001-01-01T10:00", "timezone": "UTC"})
    html = refused.get_data(as_text=True)
    assert f'<p class="field-error" id="move-{birthday}-error">That time is in the past</p>' in html
    assert re.search(
        rf'<details open>\s*<summary>Reschedule</summary>\s*<form method="post" action="/scheduled/{birthday}/move"',
        html,
    )
    empty = user.htmx("POST", f"/scheduled/{birthday}/move", data={"send_at": "", "timezone": "UTC"})
    assert "Pick a new date and time" in empty.get_data(as_text=True)

    cancelled = user.htmx("POST", f"/scheduled/{birthday}/cancel").get_data(as_text=True)
    assert "Cancelled the message to +919876543210: it will not be sent." in cancelled
    assert "Happy birthday!" not in cancelled and "Your order is ready" in cancelled
    again = user.htmx("POST", f"/scheduled/{birthday}/cancel").get_data(as_text=True)
    assert (
        'data-testid="scheduled-error">This message is cancelled, not scheduled: it can no longer be changed' in again
    )
    assert client.get(f"/api/messages/{birthday}", headers=account.headers).get_json()["status"] == "cancelled"

    [other] = _scheduled(client, account)
    plain = client.post(f"/scheduled/{other['messageId']}/cancel", data={"csrf_token": user.csrf})
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/scheduled")
    assert 'data-testid="no-scheduled"' in client.get("/scheduled").get_data(as_text=True)
    assert client.post(f"/scheduled/{other['messageId']}/cancel").status_code == 400  # no CSRF token


def test_one_sessions_scheduled_messages(client, account, shop):
    user = DashboardUser(client, account)
    _send_later(user, shop, _local(_tomorrow_at_ten("UTC"), "UTC"), "UTC")
    page = client.get(f"/scheduled?session={shop}").get_data(as_text=True)
    assert "Messages waiting for their time from Shop" in unescape(page) and "Happy birthday!" in page
    assert f'<input type="hidden" name="session" value="{shop}">' in page
    card = client.get(f"/sessions/{shop}/pace").get_data(as_text=True)
    assert f'href="/scheduled?session={shop}"' in card


def test_another_user_cannot_see_move_or_cancel_someone_elses_scheduled_message(
    app, client, account, shop, make_account
):
    user = DashboardUser(client, account)
    _send_later(user, shop, _local(_tomorrow_at_ten("UTC"), "UTC"), "UTC")
    [message] = _scheduled(client, account)
    other = app.test_client()
    intruder = DashboardUser(other, make_account())
    assert "Happy birthday!" not in other.get("/scheduled").get_data(as_text=True)
    assert other.get(f"/scheduled?session={shop}").status_code == 404
    when = {"send_at": _local(_tomorrow_at_ten("UTC"), "UTC"), "timezone": "UTC"}
    assert intruder.htmx("POST", f"/scheduled/{message['messageId']}/move", data=when).status_code == 404
    assert intruder.htmx("POST", f"/scheduled/{message['messageId']}/cancel").status_code == 404
    assert _scheduled(client, account)[0]["status"] == "scheduled"


def _preview_later(user: Browser, session_id: str, start_at: str, zone: str = "UTC"):
    data = {
        "session_id": session_id,
        "numbers": "919811110001\n919811110002",
        "message": "Sale starts now",
        "delay": "0",
        "start_at": start_at,
        "timezone": zone,
    }
    return user.htmx("POST", "/bulk/preview", data=data, content_type="multipart/form-data")


def test_a_bulk_send_with_a_start_time_waits_and_can_be_cancelled(app, client, growth_session, make_account):
    account, session_id = growth_session
    user = Browser(client, account)
    assert 'name="start_at" type="datetime-local"' in client.get("/bulk").get_data(as_text=True)
    at = _tomorrow_at_ten("Asia/Kolkata")
    preview = _preview_later(user, session_id, _local(at, "Asia/Kolkata"), "Asia/Kolkata").get_data(as_text=True)
    iso = f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.000Z"
    assert 'data-testid="bulk-starts"' in preview and f'<time datetime="{iso}"' in preview
    assert re.search(r"Schedule for 2 numbers", preview)
    hidden = re.search(r'name="send_at" type="hidden" value="([^"]+)"', preview).group(1)
    assert datetime.fromisoformat(hidden) == at

    fields = dict(
        re.findall(
            r'name="(session_id|contacts|message|delay|send_at|csrf_token)" type="hidden" value="([^"]*)"', preview
        )
    )
    sent = user.htmx("POST", "/bulk", data={name: unescape(value) for name, value in fields.items()})
    batch_url = sent.headers["HX-Redirect"]
    page = client.get(batch_url).get_data(as_text=True)
    assert "Scheduled a batch to 2 numbers." in page
    assert 'data-testid="batch-status">scheduled<' in page
    assert f'<time datetime="{iso}" data-local="minutes" data-testid="batch-starts">' in page
    assert 'data-testid="batch-cancel">Cancel batch</button>' in page
    assert "At Shop's pace: no wait between messages" in re.sub(r"\s+", " ", unescape(page))
    assert user.htmx("GET", f"{batch_url}/progress").status_code == 200  # it polls until it starts

    stranger = app.test_client()
    DashboardUser(stranger, make_account(plan="growth"))
    intruder_csrf = re.search(
        r'name="csrf-token" content="([^"]+)"', stranger.get("/bulk").get_data(as_text=True)
    ).group(1)
    assert stranger.post(f"{batch_url}/cancel", data={"csrf_token": intruder_csrf}).status_code == 404

    cancelled = client.post(f"{batch_url}/cancel", data={"csrf_token": user.csrf})
    assert cancelled.status_code == 302 and cancelled.headers["Location"].endswith(batch_url)
    page = client.get(batch_url).get_data(as_text=True)
    assert "Batch cancelled: none of its messages will be sent" in page
    assert 'data-testid="batch-status">cancelled<' in page and "Cancel batch" not in page
    assert user.htmx("GET", f"{batch_url}/progress").status_code == 286  # nothing more to watch
    again = client.post(f"{batch_url}/cancel", data={"csrf_token": user.csrf}, follow_redirects=True)
    assert "This batch is cancelled: only a scheduled batch can be cancelled" in again.get_data(as_text=True)


def test_a_bulk_start_time_in_the_past_is_refused_beside_the_field(client, growth_session):
    account, session_id = growth_session
    user = Browser(client, account)
    html = _preview_later(user, session_id, "2001-01-01T10:00").get_data(as_text=True)
    assert '<p class="field-error" id="start_at-error">That time is in the past</p>' in html
    assert 'data-testid="bulk-send"' not in html


def test_a_running_batch_says_how_fast_its_sessions_pace_sends(client, growth_session):
    account, session_id = growth_session
    client.put(
        f"/api/sessions/{session_id}/pace", json={"minGapSeconds": 30, "jitterSeconds": 10}, headers=account.headers
    )
    user = Browser(client, account)
    batch_url = user.send_batch(session_id, ["919811110001", "919811110002"])
    panel = wait_for(
        lambda: (
            (html := user.htmx("GET", f"{batch_url}/progress").get_data(as_text=True)) and "running" in html and html
        )
    )
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", panel)))
    assert "At Shop's pace: one message every ~35 s" in text
    assert re.search(r"Should finish in about \d+ seconds, around \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)


def test_a_send_clicked_before_the_scripts_ran_posts_and_shows_the_whole_page(client, account, shop):
    user = DashboardUser(client, account)
    page = client.get(f"/sessions/{shop}").get_data(as_text=True)
    assert f'id="send-form" method="post" action="/sessions/{shop}/send"' in page
    data = {"to": "12345", "message": "hi", "csrf_token": user.csrf}
    answer = client.post(f"/sessions/{shop}/send", data=data)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" in html
    assert "country code" in html and 'aria-invalid="true"' in html
    assert _scheduled(client, account) == []
