"""The dashboard's send governor: a session's pace card and settings, and the banner that
announces a paused session on every page until its owner resumes sending."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest

from tests.dashboard import DashboardUser
from tests.helpers import wait_for

CONTACT = "919876543210"
# What the form sends when nothing is changed (TestConfig's defaults: no pace at all).
DEFAULTS = {
    "min_gap_seconds": "0",
    "jitter_seconds": "0",
    "per_minute": "100000",
    "per_day": "100000",
    "warmup": "",
    "quiet_start": "",
    "quiet_end": "",
    "timezone": "UTC",
}


def _text(html: str) -> str:
    """The words a person reads, whitespace squeezed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _field_error(html: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert match, f"no error beside {field} in:\n{html}"
    return unescape(match.group(1))


def _save(user: DashboardUser, session_id: str, **changes):
    return user.htmx("POST", f"/sessions/{session_id}/pace", data=DEFAULTS | changes)


def _pace(client, account, session_id: str) -> dict:
    return client.get(f"/api/sessions/{session_id}/pace", headers=account.headers).get_json()


def test_the_session_page_shows_the_pace_card_with_its_settings(client, account, shop):
    DashboardUser(client, account)
    page = client.get(f"/sessions/{shop}").get_data(as_text=True)
    assert "Sending pace" in page and "Pace settings" in page
    assert 'data-testid="pace-status"' in page and 'data-depth="0"' in page
    # The card keeps itself current: it polls and listens to the session's events.
    assert re.search(r'hx-get="/sessions/[^"]+/pace"\s+hx-trigger="every 5s, wa-messages-' + shop, page)
    assert "Nothing is waiting" in _text(page)
    assert 'name="per_minute" type="number" value="100000"' in page
    assert '<datalist id="timezones">' in page and '<option value="Asia/Kolkata">' in page

    live = client.get(f"/sessions/{shop}/pace").get_data(as_text=True)
    assert live.startswith('<div id="pace-status"') and "Sent today" in live


def test_saving_the_pace_changes_it_and_restoring_the_defaults_undoes_it(app, client, account, shop):
    user = DashboardUser(client, account)
    saved = _save(
        user,
        shop,
        min_gap_seconds="5",
        jitter_seconds="2.5",
        per_minute="8",
        per_day="400",
        warmup="20, 50,100",
        quiet_start="21:00",
        quiet_end="08:00",
        timezone="Asia/Kolkata",
        typing="y",
    )
    html = saved.get_data(as_text=True)
    assert saved.status_code == 200 and 'data-testid="pace-saved"' in html
    assert saved.headers["HX-Trigger"] == f"wa-pace-{shop}"  # the queue part re-reads its waits
    assert 'value="20, 50, 100"' in html and 'value="2.5"' in html
    pace = _pace(client, account, shop)["pace"]
    assert pace == {
        "minGapSeconds": 5.0,
        "jitterSeconds": 2.5,
        "perMinute": 8,
        "perDay": 400,
        "warmup": [20, 50, 100],
        "quietStart": "21:00",
        "quietEnd": "08:00",
        "timezone": "Asia/Kolkata",
        "typing": True,
    }
    card = _text(client.get(f"/sessions/{shop}/pace").get_data(as_text=True))
    assert "One message every 5–7.5 s, at most 8 a minute and 400 a day" in card
    assert "Quiet hours 21:00–08:00 (Asia/Kolkata)" in card and "typing" in card

    restored = user.htmx("POST", f"/sessions/{shop}/pace/defaults")
    assert 'value="100000"' in restored.get_data(as_text=True)
    assert _pace(client, account, shop)["pace"]["perMinute"] == 100_000
    from extensions import db
    from models import WaSession

    _save(user, shop, per_day="100000")  # the default, typed in: still "the default"
    with app.app_context():
        assert db.session.get(WaSession, shop).pace is None


@pytest.mark.parametrize(
    "changes, field, error",
    [
        ({"per_minute": "0"}, "per_minute", "At most per minute must be a whole number from 1 to 100000"),
        ({"min_gap_seconds": "5000"}, "min_gap_seconds", "Minimum gap (seconds) must be a number of seconds from 0"),
        ({"min_gap_seconds": "soon"}, "min_gap_seconds", "Enter a number of seconds"),
        ({"timezone": "Mars/Olympus"}, "pace-timezone", 'Time zone must be an IANA time zone like "Asia/Kolkata"'),
        ({"warmup": "50, lots"}, "warmup", "Whole numbers separated by commas, like 50, 100, 200"),
        ({"warmup": "0, 10"}, "warmup", "a list of up to 60 daily ceilings"),
        ({"quiet_start": "21:00"}, "quiet_end", "Set both times for quiet hours, or leave both empty"),
    ],
)
def test_bad_pace_settings_are_explained_beside_their_field(client, account, shop, changes, field, error):
    user = DashboardUser(client, account)
    answer = _save(user, shop, **changes)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "HX-Trigger" not in answer.headers
    assert error in _field_error(html, field)
    assert re.search(rf'aria-invalid="true"[^>]* id="{field}"', html)
    assert 'data-testid="pace-saved"' not in html
    assert _pace(client, account, shop)["pace"]["perMinute"] == 100_000  # nothing was saved


def test_without_scripts_the_pace_form_still_saves_and_shows_errors_on_the_page(client, account, shop):
    user = DashboardUser(client, account)
    url = f"/sessions/{shop}/pace"
    saved = client.post(url, data=DEFAULTS | {"per_minute": "6", "csrf_token": user.csrf})
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/sessions/{shop}")
    assert _pace(client, account, shop)["pace"]["perMinute"] == 6
    refused = client.post(url, data=DEFAULTS | {"per_day": "0", "csrf_token": user.csrf}).get_data(as_text=True)
    assert "<h1>Shop</h1>" in refused and "At most per day must be" in _field_error(refused, "per_day")
    assert client.post(url, data=DEFAULTS).status_code == 400  # no CSRF token


def test_a_waiting_message_says_what_it_waits_for(client, account, shop, runtime):
    user = DashboardUser(client, account)
    _save(user, shop, min_gap_seconds="600")
    for text in ("First", "Second"):
        client.post(f"/api/sessions/{shop}/send", json={"to": CONTACT, "message": text}, headers=account.headers)
    card_url = f"/sessions/{shop}/pace"
    card = wait_for(lambda: 'data-waiting-for="gap"' in (html := client.get(card_url).get_data(as_text=True)) and html)
    assert 'data-testid="pace-waiting">1<' in card
    assert "waiting for the gap between two messages (at least 600 s)" in _text(card)
    assert re.search(r'Next message at <time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z" data-local="seconds">', card)

    now = datetime.now(UTC)
    quiet = {
        "quiet_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    _save(user, shop, min_gap_seconds="600", **quiet)
    card = client.get(card_url).get_data(as_text=True)
    assert 'data-waiting-for="quiet_hours"' in card
    assert f"waiting for the end of quiet hours ({quiet['quiet_start']}–{quiet['quiet_end']}, UTC)" in _text(card)


def _pause(app, session_id: str, reason: str = "9 of the last 10 messages went to numbers not on WhatsApp.") -> None:
    from extensions import db
    from models import WaSession
    from services.governor.pace import session_pause

    with app.app_context():
        assert session_pause(db.session.get(WaSession, session_id), reason)


def test_a_paused_session_is_announced_on_every_page_until_it_is_resumed(app, client, account, shop):
    user = DashboardUser(client, account)
    _pause(app, shop)
    for path in ("/sessions", f"/sessions/{shop}", "/messages", "/bulk", "/scheduled", "/stats", "/account"):
        page = client.get(path).get_data(as_text=True)
        assert page.count('data-testid="paused-alert"') == 1, path
        assert "Sending from Shop is paused to protect its WhatsApp number" in _text(page), path
        assert "9 of the last 10 messages went to numbers not on WhatsApp." in page, path
    banner = client.get("/paused").get_data(as_text=True)
    assert banner.startswith('<div id="paused-alerts"') and "wa-paused from:body" in banner
    card = client.get(f"/sessions/{shop}/pace").get_data(as_text=True)
    assert 'data-paused="true"' in card and "Sending is paused" in card

    assert client.post(f"/sessions/{shop}/resume").status_code == 400  # no CSRF token
    resumed = user.htmx("POST", f"/sessions/{shop}/resume")
    assert (resumed.status_code, resumed.headers["HX-Trigger"]) == (200, "wa-paused")
    assert 'data-testid="paused-alert"' not in client.get("/sessions").get_data(as_text=True)
    assert _pace(client, account, shop)["paused"] is False
    assert user.htmx("POST", f"/sessions/{shop}/resume").status_code == 200  # already resumed: no error

    _pause(app, shop, "WhatsApp temporarily banned this number")
    plain = client.post(f"/sessions/{shop}/resume", data={"csrf_token": user.csrf})
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"/sessions/{shop}")
    assert "Sending from Shop resumed." in client.get(f"/sessions/{shop}").get_data(as_text=True)


def test_another_user_sees_nothing_of_a_sessions_pace_and_cannot_change_it(app, client, account, shop, make_account):
    _pause(app, shop)
    stranger = make_account()
    other = app.test_client()
    intruder = DashboardUser(other, stranger)
    assert 'data-testid="paused-alert"' not in other.get("/sessions").get_data(as_text=True)
    assert other.get(f"/sessions/{shop}/pace").status_code == 404
    assert intruder.htmx("POST", f"/sessions/{shop}/pace", data=DEFAULTS).status_code == 404
    assert intruder.htmx("POST", f"/sessions/{shop}/pace/defaults").status_code == 404
    assert intruder.htmx("POST", f"/sessions/{shop}/resume").status_code == 404
    assert _pace(client, account, shop)["paused"] is True
