"""The dashboard's session page: linking by phone number, and a failed session's reason."""

import re

from tests.dashboard import DashboardUser
from tests.helpers import wait_for


def _create_pending(client, account) -> str:
    session_id = client.post("/api/sessions", json={"name": "Shop"}, headers=account.headers).get_json()["sessionId"]
    status = f"/api/sessions/{session_id}/status"
    wait_for(lambda: client.get(status, headers=account.headers).get_json()["status"] == "pending")
    return session_id


def test_linking_with_a_phone_number_from_the_session_page(client, runtime, account):
    user = DashboardUser(client, account)
    session_id = _create_pending(client, account)
    page = client.get(f"/sessions/{session_id}").get_data(as_text=True)
    assert "Link with phone number instead" in page

    refused = user.htmx("POST", f"/sessions/{session_id}/pair-code", data={"phone": "12"}).get_data(as_text=True)
    assert "8 to 15 digits" in refused and 'aria-invalid="true"' in refused

    answer = user.htmx("POST", f"/sessions/{session_id}/pair-code", data={"phone": "+44 7700 900123"})
    code = re.search(r'data-testid="pair-code">([^<]+)<', answer.get_data(as_text=True)).group(1)
    assert re.fullmatch(r"[1-9A-Z]{4}-[1-9A-Z]{4}", code)

    panel = user.htmx("POST", f"/sessions/{session_id}/simulate-pair-code", data={"code": code})
    html = panel.get_data(as_text=True)
    assert 'data-testid="connected"' in html and "+447700900123" in html


def test_a_session_in_error_shows_why(client, runtime, account):
    DashboardUser(client, account)
    session_id = _create_pending(client, account)
    client.put(f"/api/simulator/faults?sessionId={session_id}", json={"unreachable": True}, headers=account.headers)
    client.post(f"/api/sessions/{session_id}/connect", headers=account.headers)
    status = f"/api/sessions/{session_id}/status"
    wait_for(lambda: client.get(status, headers=account.headers).get_json()["status"] == "error")

    panel = client.get(f"/sessions/{session_id}/panel").get_data(as_text=True)
    reason = re.search(r'role="alert" data-testid="status-reason">([^<]+)<', panel).group(1)
    assert reason == "Could not reach WhatsApp (network unreachable)"
    assert ">Connect</button>" in panel


def test_every_page_has_an_icon(client, account):
    with client.get("/favicon.ico") as icon:
        assert icon.status_code == 200 and icon.mimetype in {"image/vnd.microsoft.icon", "image/x-icon"}
        assert icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    pages = [client.get(path).get_data(as_text=True) for path in ("/", "/login", "/docs")]
    DashboardUser(client, account)
    pages.append(client.get("/sessions").get_data(as_text=True))
    for page in pages:
        links = re.findall(r'<link rel="icon" href="([^"]+)"', page)
        assert links == ["/favicon.ico", "/static/favicon.svg"]
        for link in links:
            with client.get(link) as answer:
                assert answer.status_code == 200, link
