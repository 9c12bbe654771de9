"""Groups through a session, on the simulator: create, read, change participants, invite, leave, send."""

import pytest

from tests.helpers import SHOP_PHONE

ME = SHOP_PHONE  # the number the session is paired as


def _create(client, account, session_id, **body):
    body = {"name": "Wholesale buyers", "participants": ["919845011111", "919845022222"], **body}
    return client.post(f"/api/sessions/{session_id}/groups", json=body, headers=account.headers)


def test_create_read_and_list_a_group(client, account, shop):
    created = _create(client, account, shop)
    assert created.status_code == 201
    group = created.get_json()["group"]
    assert group["id"].endswith("@g.us") and group["name"] == "Wholesale buyers"
    assert {(p["phone"], p["role"]) for p in group["participants"]} == {
        (ME, "superadmin"),
        ("919845011111", "member"),
        ("919845022222", "member"),
    }
    base = f"/api/sessions/{shop}/groups"
    assert client.get(f"{base}/{group['id']}", headers=account.headers).get_json()["group"] == group
    assert [g["id"] for g in client.get(base, headers=account.headers).get_json()["groups"]] == [group["id"]]
    participants = client.get(f"{base}/{group['id']}/participants", headers=account.headers).get_json()
    assert participants["count"] == 3


def test_participants_are_added_removed_promoted_and_demoted(client, account, shop):
    group_id = _create(client, account, shop).get_json()["group"]["id"]
    url = f"/api/sessions/{shop}/groups/{group_id}/participants"
    added = client.post(
        f"{url}/add", json={"participants": ["919845033333", "919845011111", "919845040000"]}, headers=account.headers
    ).get_json()["results"]
    assert added == [
        {"phone": "919845033333", "ok": True},
        {"phone": "919845011111", "ok": False, "reason": "already a member"},
        {"phone": "919845040000", "ok": False, "reason": "not on WhatsApp"},
    ]
    client.post(f"{url}/promote", json={"participants": ["919845033333"]}, headers=account.headers)
    client.post(f"{url}/remove", json={"participants": ["919845022222"]}, headers=account.headers)
    roles = {p["phone"]: p["role"] for p in client.get(url, headers=account.headers).get_json()["participants"]}
    assert roles == {ME: "superadmin", "919845011111": "member", "919845033333": "admin"}
    client.post(f"{url}/demote", json={"participants": ["919845033333"]}, headers=account.headers)
    roles = {p["phone"]: p["role"] for p in client.get(url, headers=account.headers).get_json()["participants"]}
    assert roles["919845033333"] == "member"
    bad = client.post(f"{url}/kick", json={"participants": ["919845033333"]}, headers=account.headers)
    assert (bad.status_code, bad.get_json()["code"]) == (400, "INVALID_ACTION")


def test_invite_links_are_revoked_and_leaving_ends_membership(client, account, shop):
    group_id = _create(client, account, shop).get_json()["group"]["id"]
    base = f"/api/sessions/{shop}/groups/{group_id}"
    link = client.get(f"{base}/invite-link", headers=account.headers).get_json()["inviteLink"]
    assert link.startswith("https://chat.whatsapp.com/")
    new = client.post(f"{base}/invite-link/revoke", headers=account.headers).get_json()["inviteLink"]
    assert new != link and client.get(f"{base}/invite-link", headers=account.headers).get_json()["inviteLink"] == new
    assert client.post(f"{base}/leave", headers=account.headers).status_code == 200
    assert client.get(f"/api/sessions/{shop}/groups", headers=account.headers).get_json()["groups"] == []
    gone = client.get(base, headers=account.headers)
    assert (gone.status_code, gone.get_json()["code"]) == (404, "GROUP_NOT_FOUND")


def test_a_message_goes_to_a_group_id_like_to_a_number(client, account, shop, runtime):
    group_id = _create(client, account, shop).get_json()["group"]["id"]
    sent = client.post(
        f"/api/sessions/{shop}/send", json={"to": group_id, "message": "New prices today"}, headers=account.headers
    )
    assert sent.status_code == 200, sent.get_json()
    assert runtime.engine_host.engine.outbox(shop)[-1]["to"] == group_id
    other = client.post(
        f"/api/sessions/{shop}/send", json={"to": "120363999999999999@g.us", "message": "Hi"}, headers=account.headers
    )
    assert (other.status_code, other.get_json()["code"]) == (400, "NOT_IN_GROUP")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "", "participants": ["919845011111"]}, "INVALID_FIELD"),
        ({"name": "x", "participants": []}, "INVALID_PARTICIPANTS"),
    ],
)
def test_bad_groups_are_refused(client, account, shop, body, code):
    response = client.post(f"/api/sessions/{shop}/groups", json=body, headers=account.headers)
    assert (response.status_code, response.get_json()["code"]) == (400, code)


def test_a_malformed_group_id_is_400(client, account, shop):
    assert client.get(f"/api/sessions/{shop}/groups/not-a-group", headers=account.headers).status_code == 400
