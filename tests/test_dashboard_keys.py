"""Dashboard API keys: create (the key shown once), list, revoke, CSRF, and only one's own keys."""

import re

from tests.dashboard import DashboardUser

KEY = re.compile(r"wag_(live|test)_[0-9a-f]{64}")


def _keys(client, account) -> list[dict]:
    return client.get("/api/keys", headers=account.headers).get_json()["keys"]


def _create(user: DashboardUser, **fields):
    return user.htmx("POST", "/keys", data={"name": "Billing server", "mode": "live", **fields})


def test_a_new_key_is_shown_once_and_the_list_shows_only_its_prefix(client, account):
    user = DashboardUser(client, account, landing="/keys")
    page = client.get("/keys").get_data(as_text=True)
    assert "No API keys yet" in page
    assert 'aria-current="page">API keys</a>' in page

    response = _create(user)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "wa-keys"
    fragment = response.get_data(as_text=True)
    plaintext = KEY.search(fragment).group(0)
    assert 'data-copy="#key-value"' in fragment
    assert "shown only this once" in fragment
    assert 'value="Billing server"' not in fragment  # the form is blank again

    listed = user.htmx("GET", "/keys").get_data(as_text=True)
    page = client.get("/keys").get_data(as_text=True)
    for html in (listed, page):
        assert plaintext not in html and not KEY.search(html)
        assert f"{plaintext[:13]}…" in html
        assert "Billing server" in html and "badge-live" in html and "Never" in html
    assert client.get("/api/sessions", headers={"X-Api-Key": plaintext}).status_code == 200


def test_a_test_key_limited_to_a_session_with_an_expiry(client, account, shop):
    user = DashboardUser(client, account, landing="/keys")
    page = client.get("/keys").get_data(as_text=True)
    assert f'value="{shop}"' in page and 'type="checkbox"' in page
    response = _create(user, name="CI", mode="test", sessions=shop, expires="2099-12-31")
    assert KEY.search(response.get_data(as_text=True)).group(0).startswith("wag_test_")
    [key] = _keys(client, account)
    assert (key["mode"], key["sessionIds"], key["expiresAt"]) == ("test", [shop], "2099-12-31T00:00:00.000Z")
    listed = user.htmx("GET", "/keys").get_data(as_text=True)
    assert "badge-test" in listed and "Shop" in listed and "2099-12-31 00:00 UTC" in listed


def test_bad_input_is_explained_on_the_form(client, account):
    user = DashboardUser(client, account, landing="/keys")
    fragment = _create(user, name="", expires="2001-01-01").get_data(as_text=True)
    assert 'class="field-error"' in fragment and not KEY.search(fragment)
    fragment = _create(user, expires="2001-01-01").get_data(as_text=True)
    assert "in the future" in fragment and not KEY.search(fragment)
    assert _keys(client, account) == []


def test_revoking_a_key_stops_it_at_once(client, account):
    user = DashboardUser(client, account, landing="/keys")
    plaintext = KEY.search(_create(user).get_data(as_text=True)).group(0)
    key_id = _keys(client, account)[0]["id"]
    page = client.get("/keys").get_data(as_text=True)
    assert "hx-confirm=" in page and f"/keys/{key_id}/revoke" in page

    listed = user.htmx("POST", f"/keys/{key_id}/revoke").get_data(as_text=True)
    assert "badge-revoked" in listed and f"/keys/{key_id}/revoke" not in listed
    assert _keys(client, account)[0]["revoked"] is True
    assert client.get("/api/sessions", headers={"X-Api-Key": plaintext}).status_code == 401


def test_forms_without_a_valid_csrf_token_are_rejected(client, account):
    user = DashboardUser(client, account, landing="/keys")
    assert client.post("/keys", data={"name": "No token", "mode": "live"}).status_code == 400
    assert client.post("/keys", data={"name": "Forged", "mode": "live", "csrf_token": "forged"}).status_code == 400
    assert _keys(client, account) == []
    _create(user)
    key_id = _keys(client, account)[0]["id"]
    assert client.post(f"/keys/{key_id}/revoke", headers={"HX-Request": "true"}).status_code == 400
    assert _keys(client, account)[0]["revoked"] is False


def test_a_form_post_without_htmx_shows_the_whole_page_with_the_key(client, account):
    user = DashboardUser(client, account, landing="/keys")
    response = client.post("/keys", data={"name": "No JS", "mode": "live", "csrf_token": user.csrf})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert html.count(KEY.search(html).group(0)) == 1
    assert "No JS" in html
