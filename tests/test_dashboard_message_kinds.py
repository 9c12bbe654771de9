"""Messages of every kind in the dashboard: pictures to look at, players, documents to download,
places on a map, contact cards, polls with their votes, reactions and replies; their files
served to the logged-in owner only; and whatever a contact wrote shown as text, never as markup."""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser

import pytest

from blueprints.dashboard.message_view import KIND_LABELS, size_text
from engines.outgoing import KINDS
from tests.dashboard import DashboardUser
from tests.fixtures import MP3, MP4, OGG, PDF, PNG, WEBP, data_url
from tests.helpers import wait_for

CONTACT = "919811112222"
OTHER = "447911123456"
HTMX = {"HX-Request": "true"}


class _Elements(HTMLParser):
    """Every element of a page as (tag, attributes), and the text of the page."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _row(html: str, message_id: str) -> str:
    """One message's row of the log (or bubble of the session page) up to the next one, as HTML."""
    start = html.index(f'data-message-id="{message_id}"')
    end = html.find('data-message-id="', start + 1)
    return html[start : end if end != -1 else len(html)]


def _find(html: str, tag: str, **wanted: str) -> list[dict]:
    """The attributes of each `tag` element whose attributes include `wanted` (data_testid: data-testid)."""
    wanted = {name.replace("_", "-"): value for name, value in wanted.items()}
    return [
        attrs
        for name, attrs in _Elements(html).elements
        if name == tag and all(attrs.get(key) == value for key, value in wanted.items())
    ]


def _text(html: str) -> str:
    return " ".join("".join(_Elements(html).text).split())


@pytest.fixture
def owner(client, account):
    return DashboardUser(client, account)


def _send(client, account, session_id, payload: dict, to: str = CONTACT) -> str:
    response = client.post(f"/api/sessions/{session_id}/send", json={"to": to, **payload}, headers=account.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["messageId"]


def _inbound_count(client, account) -> int:
    log = client.get("/api/messages", query_string={"direction": "inbound"}, headers=account.headers)
    return log.get_json()["total"]


def _arrive(client, account, session_id, payload: dict, sender: str = CONTACT) -> str:
    """A contact sends `payload`; the id of the stored message once it is in the log."""
    before = _inbound_count(client, account)
    response = client.post(
        f"/api/simulator/sessions/{session_id}/inbound", json={"from": sender, **payload}, headers=account.headers
    )
    assert response.status_code == 202, response.get_json()
    wait_for(lambda: _inbound_count(client, account) > before, timeout=30, message="the inbound message")
    log = client.get("/api/messages", query_string={"direction": "inbound", "limit": 1}, headers=account.headers)
    return log.get_json()["messages"][0]["messageId"]


def _content(client, account, message_id) -> dict:
    message = client.get(f"/api/messages/{message_id}", headers=account.headers).get_json()
    return message.get("content") or {}


def _page(owner, path: str = "/messages") -> str:
    response = owner.client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_every_kind_has_an_icon_and_a_name():
    assert set(KIND_LABELS) == set(KINDS)
    assert [size_text(n) for n in (512, 12_800, 3 * 1024 * 1024)] == ["512 B", "12.5 KB", "3.0 MB"]


def test_pictures_players_and_documents_show_in_the_log(client, account, shop, owner):
    image = _send(client, account, shop, {"image": {"data": data_url(PNG, "image/png"), "caption": "Your receipt"}})
    sticker = _send(client, account, shop, {"sticker": data_url(WEBP, "image/webp")})
    video = _send(client, account, shop, {"video": data_url(MP4, "video/mp4")})
    voice = _send(client, account, shop, {"audio": {"url": data_url(OGG, "audio/ogg"), "ptt": True}})
    song = _send(client, account, shop, {"audio": data_url(MP3, "audio/mpeg")})
    document = _send(
        client, account, shop, {"document": {"url": data_url(PDF, "application/pdf"), "filename": "invoice.pdf"}}
    )
    received = _arrive(client, account, shop, {"image": {"data": data_url(PNG, "image/png"), "caption": "In stock?"}})
    html = _page(owner)

    for message_id, caption in ((image, "Your receipt"), (sticker, None), (received, "In stock?")):
        row = _row(html, message_id)
        [thumbnail] = _find(row, "img", data_testid="thumbnail")
        assert thumbnail["src"] == f"/messages/{message_id}/media"
        assert thumbnail["loading"] == "lazy"
        assert "message-thumb" in thumbnail["class"]
        if caption:
            assert caption in _text(row)
    assert "📷 Image" in _text(_row(html, received))
    assert "Sticker" in _text(_row(html, sticker))

    [player] = _find(_row(html, video), "video", data_testid="player")
    assert (player["src"], player["preload"], "controls" in player) == (f"/messages/{video}/media", "none", True)
    for message_id, label in ((voice, "🎤 Voice note"), (song, "🎵 Audio")):
        row = _row(html, message_id)
        [player] = _find(row, "audio", data_testid="player")
        assert (player["src"], player["preload"], "controls" in player) == (
            f"/messages/{message_id}/media",
            "none",
            True,
        )
        assert label in _text(row)

    row = _row(html, document)
    [link] = _find(row, "a", data_testid="download")
    assert link["href"] == f"/messages/{document}/media" and "download" in link
    assert "📄 Document" in _text(row) and "invoice.pdf" in _text(row) and size_text(len(PDF)) in _text(row)
    # A text message shows just its text.
    text = _send(client, account, shop, {"message": "Plain words"})
    row = _row(_page(owner), text)
    assert _find(row, "img") == [] and "Plain words" in _text(row) and _find(row, "span", data_testid="kind") == []


def test_places_cards_polls_reactions_and_replies_show_in_the_log(client, account, shop, owner):
    place = _send(client, account, shop, {"location": {"latitude": 12.9716, "longitude": 77.5946, "name": "Gate 2"}})
    card = _send(client, account, shop, {"contact": {"fullName": "Ravi Kumar", "phoneNumber": "919800000001"}})
    poll = _send(client, account, shop, {"poll": {"question": "Open Sunday?", "options": ["Yes", "No", "Maybe"]}})
    viewed_once = _send(client, account, shop, {"image": {"data": data_url(PNG, "image/png"), "viewOnce": True}})
    for voter, choice in ((CONTACT, "Yes"), (OTHER, "Yes"), ("14155550100", "No")):
        vote = {"from": voter, "vote": {"messageId": poll, "options": [choice]}}
        answer = client.post(f"/api/simulator/sessions/{shop}/inbound", json=vote, headers=account.headers)
        assert answer.status_code == 202, answer.get_json()
    wait_for(lambda: len(_content(client, account, poll).get("votes") or {}) == 3, timeout=30, message="3 votes")
    reaction = {"from": CONTACT, "reaction": {"messageId": card, "emoji": "🙏"}}
    client.post(f"/api/simulator/sessions/{shop}/inbound", json=reaction, headers=account.headers)
    wait_for(lambda: _content(client, account, card).get("reactions"), timeout=30, message="the reaction")
    reply = _arrive(client, account, shop, {"message": "See you there", "quoted": place})
    our_reaction = _send(client, account, shop, {"reaction": {"messageId": reply, "emoji": "👍"}})
    html = _page(owner)

    row = _row(html, place)
    [link] = _find(row, "a", data_testid="map-link")
    assert link["href"].startswith("https://www.openstreetmap.org/?mlat=12.9716&mlon=77.5946")
    assert (link["target"], link["rel"]) == ("_blank", "noopener noreferrer")
    assert "📍 Location" in _text(row) and "Gate 2" in _text(row)

    row = _row(html, card)
    assert "👤 Contact card Ravi Kumar +919800000001" in _text(row)
    [chip] = _find(row, "li", data_testid="reaction")
    assert chip["title"] == f"+{CONTACT}"
    assert "🙏" in _text(row)

    row = _row(html, poll)
    assert "📊 Poll Open Sunday?" in _text(row)
    counts = {
        option: count
        for option, count in zip(("Yes", "No", "Maybe"), (m["value"] for m in _find(row, "meter")), strict=True)
    }
    assert counts == {"Yes": "2", "No": "1", "Maybe": "0"}
    assert "Yes 2" in _text(row) and "No 1" in _text(row) and "Maybe 0" in _text(row)
    assert "3 people voted" in _text(row)

    assert "↩ reply to “📍 Gate 2”" in _text(_row(html, reply))
    assert "👍 on “See you there”" in _text(_row(html, our_reaction))
    assert "👁 View once" in _text(_row(html, viewed_once))


def test_the_session_page_shows_the_same_kinds(client, account, shop, owner):
    poll = _send(client, account, shop, {"poll": {"question": "Open Sunday?", "options": ["Yes", "No"]}})
    client.post(
        f"/api/simulator/sessions/{shop}/inbound",
        json={"from": CONTACT, "vote": {"messageId": poll, "options": ["No"]}},
        headers=account.headers,
    )
    wait_for(lambda: _content(client, account, poll).get("votes"), timeout=30, message="the vote")
    image = _arrive(client, account, shop, {"image": data_url(PNG, "image/png")})
    for html in (_page(owner, f"/sessions/{shop}"), owner.htmx("GET", f"/sessions/{shop}/messages").get_data(True)):
        [thumbnail] = _find(_row(html, image), "img", data_testid="thumbnail")
        assert thumbnail["src"] == f"/messages/{image}/media"
        assert "Yes 0" in _text(_row(html, poll)) and "No 1" in _text(_row(html, poll))


def test_the_kind_filter_picks_one_kind(client, account, shop, owner):
    _send(client, account, shop, {"message": "words"})
    image = _send(client, account, shop, {"image": data_url(PNG, "image/png")})
    place = _send(client, account, shop, {"location": {"latitude": 1, "longitude": 2}})
    html = _page(owner, "/messages?type=image")
    assert f'data-message-id="{image}"' in html and f'data-message-id="{place}"' not in html
    assert "selected" in _find(html, "option", value="image")[0]
    assert f'data-message-id="{place}"' in _page(owner, "/messages?type=location")
    # The filter survives paging and the live refresh: the log's own URL carries it.
    assert _find(html, "div", id="message-log")[0]["hx-get"] == "/messages?type=image"
    html = _page(owner, "/messages?type=gif")
    assert "&#39;type&#39; must be one of" in html and "data-message-id" not in html


def test_a_message_expands_to_its_details(client, account, shop, owner):
    poll = _send(client, account, shop, {"poll": {"question": "Open Sunday?", "options": ["Yes", "No"]}})
    client.post(
        f"/api/simulator/sessions/{shop}/inbound",
        json={"from": CONTACT, "vote": {"messageId": poll, "options": ["Yes"]}},
        headers=account.headers,
    )
    wait_for(lambda: _content(client, account, poll).get("votes"), timeout=30, message="the vote")
    document = _send(
        client, account, shop, {"document": {"url": data_url(PDF, "application/pdf"), "filename": "po.pdf"}}
    )
    [details] = _find(_row(_page(owner), poll), "details")
    assert details["hx-get"] == f"/messages/{poll}" and details["hx-trigger"] == "toggle"
    assert details["id"] == f"more-{poll}" and "hx-preserve" in details

    fragment = owner.htmx("GET", f"/messages/{poll}")
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert "<html" not in html and _find(html, "dl", data_testid="message-detail")
    assert f"Yes: 1 +{CONTACT}" in _text(html) and "No: 0" in _text(html)
    assert "WhatsApp id" in _text(html) and "Created" in _text(html)

    html = _page(owner, f"/messages/{document}")  # the same, as a page of its own
    assert "<html" in html and "po.pdf · application/pdf" in _text(html)
    assert hashlib.sha256(PDF).hexdigest() in html
    assert _find(html, "a", data_testid="download")[0]["href"] == f"/messages/{document}/media"


def test_media_is_served_to_its_logged_in_owner_only(app, client, account, shop, owner, make_account):
    image = _arrive(client, account, shop, {"image": data_url(PNG, "image/png")})
    document = _send(
        client, account, shop, {"document": {"url": data_url(PDF, "application/pdf"), "filename": "a.pdf"}}
    )
    text = _send(client, account, shop, {"message": "no file"})

    with client.get(f"/messages/{image}/media") as served:
        assert (served.status_code, served.data, served.mimetype) == (200, PNG, "image/png")
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert served.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
        assert served.headers["Cache-Control"] == "private, no-store"
        assert not served.headers.get("Content-Disposition", "").startswith("attachment")
    with client.get(f"/messages/{document}/media") as served:
        assert served.status_code == 200 and served.data == PDF
        assert served.headers["Content-Disposition"].startswith("attachment")
        assert "a.pdf" in served.headers["Content-Disposition"]
    assert client.get(f"/messages/{text}/media").status_code == 404
    assert client.get("/messages/no-such-message/media").status_code == 404

    stranger = app.test_client()
    DashboardUser(stranger, make_account())
    for path in (f"/messages/{image}/media", f"/messages/{document}/media", f"/messages/{image}"):
        assert stranger.get(path).status_code == 404
    anonymous = app.test_client().get(f"/messages/{image}/media")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    # The API's own media route keeps answering a bearer token, with the same protective headers.
    with client.get(f"/api/messages/{image}/media", headers=account.headers) as served:
        assert served.status_code == 200
        assert served.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


def test_what_a_contact_writes_is_shown_as_text_never_as_markup(client, account, shop, owner):
    script = "<script>alert(1)</script>"
    attack = '<a hx-get="/logout" hx-trigger="load">x</a>'
    _arrive(client, account, shop, {"image": {"data": data_url(PNG, "image/png"), "caption": f"look {script}"}})
    _arrive(
        client,
        account,
        shop,
        {"document": {"url": data_url(PDF, "application/pdf"), "filename": f"{script}.pdf", "caption": attack}},
    )
    _arrive(client, account, shop, {"contact": {"fullName": script, "phoneNumber": "919800000001"}})
    _arrive(client, account, shop, {"location": {"latitude": 1, "longitude": 2, "name": attack, "address": script}})
    poll = _arrive(client, account, shop, {"poll": {"question": attack, "options": [script, attack]}})
    client.post(
        f"/api/simulator/sessions/{shop}/inbound",
        json={"from": OTHER, "vote": {"messageId": poll, "options": [script]}},
        headers=account.headers,
    )
    wait_for(lambda: _content(client, account, poll).get("votes"), timeout=30, message="the vote")
    reply = _arrive(client, account, shop, {"message": "ok", "quoted": poll})

    escaped_script = "&lt;script&gt;alert(1)&lt;/script&gt;"
    escaped_attack = "&lt;a hx-get=&#34;/logout&#34; hx-trigger=&#34;load&#34;&gt;x&lt;/a&gt;"
    log, session_page = _page(owner), _page(owner, f"/sessions/{shop}")
    poll_page, reply_detail = _page(owner, f"/messages/{poll}"), owner.htmx("GET", f"/messages/{reply}").get_data(True)
    for html in (log, session_page, poll_page, reply_detail):
        assert "<script>alert" not in html and '<a hx-get="/logout"' not in html
        assert not [attrs for _, attrs in _Elements(html).elements if attrs.get("hx-get") == "/logout"]
    for html in (log, session_page, poll_page):
        assert escaped_script in html and escaped_attack in html
    assert escaped_attack in reply_detail  # the poll it replies to
    assert "&lt;script&gt;alert(1)&lt;_script&gt;.pdf" in log  # the file name, its slash made safe
