"""Number checks through a session: one number or up to 100, answers cached per session."""

import pytest


def _faults(client, account, session_id, **faults):
    client.put(f"/api/simulator/faults?sessionId={session_id}", json=faults, headers=account.headers)


def test_one_number(client, account, shop):
    yes = client.get(f"/api/sessions/{shop}/on-whatsapp/+91 98765-43210", headers=account.headers).get_json()
    assert yes == {
        "success": True,
        "phone": "919876543210",
        "exists": True,
        "waId": "919876543210@s.whatsapp.net",
        "cached": False,
    }
    no = client.get(f"/api/sessions/{shop}/on-whatsapp/919876540000", headers=account.headers).get_json()
    assert (no["exists"], no["waId"]) == (False, None)


def test_a_batch_keeps_its_order_and_reuses_cached_answers(client, account, shop):
    url = f"/api/sessions/{shop}/on-whatsapp"
    first = client.post(url, json={"phones": ["919876543210", "919876540000"]}, headers=account.headers).get_json()
    assert [(r["phone"], r["exists"], r["cached"]) for r in first["results"]] == [
        ("919876543210", True, False),
        ("919876540000", False, False),
    ]
    # While WhatsApp fails, what was asked before is still answered, from the cache.
    _faults(client, account, shop, upstream_error=True)
    again = client.post(url, json={"phones": ["919876540000", "919876543210"]}, headers=account.headers)
    assert again.status_code == 200
    assert [(r["phone"], r["exists"], r["cached"]) for r in again.get_json()["results"]] == [
        ("919876540000", False, True),
        ("919876543210", True, True),
    ]
    new = client.post(url, json={"phones": ["919876543211"]}, headers=account.headers)
    assert (new.status_code, new.get_json()["code"]) == (503, "UPSTREAM_ERROR")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phones": []}, "INVALID_FIELD"),
        ({"phones": [f"9198765{n:05d}" for n in range(101)]}, "TOO_MANY_NUMBERS"),
        ({"phones": ["not a number"]}, "INVALID_NUMBER"),
    ],
)
def test_bad_batches_are_refused(client, account, shop, body, code):
    response = client.post(f"/api/sessions/{shop}/on-whatsapp", json=body, headers=account.headers)
    assert (response.status_code, response.get_json()["code"]) == (400, code)


def test_a_session_that_is_not_connected_cannot_check(client, runtime, account):
    session_id = client.post("/api/sessions", json={}, headers=account.headers).get_json()["sessionId"]
    response = client.get(f"/api/sessions/{session_id}/on-whatsapp/919876543210", headers=account.headers)
    assert (response.status_code, response.get_json()["code"]) == (400, "SESSION_NOT_CONNECTED")
