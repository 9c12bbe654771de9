"""Contacts: from the phone's address book and from who wrote, with the owner's names, tags and notes."""

import pytest

from tests.helpers import wait_for


def _contacts(client, account, session_id, **params) -> dict:
    response = client.get(f"/api/sessions/{session_id}/contacts", query_string=params, headers=account.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_address_book_and_people_who_wrote_become_contacts(client, account, shop):
    book = [{"phone": "+91 98450 11111", "name": "Asha"}, {"phone": "919845022222", "name": "Bala"}]
    response = client.post(
        f"/api/simulator/sessions/{shop}/address-book", json={"contacts": book}, headers=account.headers
    )
    assert response.status_code == 202
    wait_for(lambda: _contacts(client, account, shop)["total"] == 2, message="the address book")
    client.post(
        f"/api/simulator/sessions/{shop}/inbound",
        json={"from": "919845033333", "message": "Hello, is the shop open?"},
        headers=account.headers,
    )
    wait_for(lambda: _contacts(client, account, shop)["total"] == 3, message="the new contact")
    listed = _contacts(client, account, shop)["contacts"]
    assert [(c["name"], c["inAddressBook"]) for c in listed] == [
        ("919845033333", False),
        ("Asha", True),
        ("Bala", True),
    ]
    assert listed[0]["lastMessageAt"] is not None


def test_the_owner_names_tags_and_notes_a_contact_and_searches(client, account, shop):
    url = f"/api/sessions/{shop}/contacts/+91 98450 44444"
    created = client.put(
        url, json={"name": "Chitra", "tags": ["wholesale", "vip"], "notes": "Pays monthly"}, headers=account.headers
    )
    assert created.status_code == 201
    assert created.get_json()["contact"]["name"] == "Chitra"
    updated = client.put(url, json={"tags": ["wholesale"]}, headers=account.headers)
    assert updated.status_code == 200
    contact = client.get(url, headers=account.headers).get_json()["contact"]
    assert (contact["name"], contact["tags"], contact["notes"]) == ("Chitra", ["wholesale"], "Pays monthly")
    client.put(f"/api/sessions/{shop}/contacts/919845055555", json={"name": "Dev"}, headers=account.headers)
    assert [c["name"] for c in _contacts(client, account, shop, search="chit")["contacts"]] == ["Chitra"]
    assert [c["name"] for c in _contacts(client, account, shop, search="wholesale")["contacts"]] == ["Chitra"]
    assert [c["name"] for c in _contacts(client, account, shop, search="55555")["contacts"]] == ["Dev"]
    page = _contacts(client, account, shop, limit=1, page=2)
    assert (page["total"], [c["name"] for c in page["contacts"]]) == (2, ["Dev"])


def test_an_address_book_sync_keeps_the_owners_name(client, account, shop):
    client.put(f"/api/sessions/{shop}/contacts/919845066666", json={"name": "Uncle"}, headers=account.headers)
    client.post(
        f"/api/simulator/sessions/{shop}/address-book",
        json={"contacts": [{"phone": "919845066666", "name": "Ramesh K"}]},
        headers=account.headers,
    )
    url = f"/api/sessions/{shop}/contacts/919845066666"
    wait_for(lambda: client.get(url, headers=account.headers).get_json()["contact"]["inAddressBook"], message="sync")
    contact = client.get(url, headers=account.headers).get_json()["contact"]
    assert (contact["name"], contact["addressBookName"]) == ("Uncle", "Ramesh K")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"tags": "vip"}, "INVALID_FIELD"),
        ({"name": "x" * 300}, "INVALID_FIELD"),
        ({"colour": "blue"}, "VALIDATION_ERROR"),
    ],
)
def test_bad_contact_fields_are_refused(client, account, shop, body, code):
    response = client.put(f"/api/sessions/{shop}/contacts/919845077777", json=body, headers=account.headers)
    assert (response.status_code, response.get_json()["code"]) == (400, code)


def test_a_number_never_saved_or_seen_is_not_found(client, account, shop):
    missing = client.get(f"/api/sessions/{shop}/contacts/919845099999", headers=account.headers)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "CONTACT_NOT_FOUND")
