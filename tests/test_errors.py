"""One error shape and one code per failure, whatever raised it."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import InternalServerError


@pytest.fixture
def broken_routes(app):
    """Two routes that fail on the server: an unexpected exception, and an explicit 500."""

    def crash():
        raise RuntimeError("a bug")

    def abort_500():
        raise InternalServerError()

    app.add_url_rule("/api/test-crash", "test_crash", crash)
    app.add_url_rule("/api/test-abort", "test_abort", abort_500)
    return app


@pytest.mark.parametrize("path", ["/api/test-crash", "/api/test-abort"])
def test_an_internal_error_has_one_code(broken_routes, path):
    response = broken_routes.test_client().get(path)
    assert response.status_code == 500
    body = response.get_json()
    assert (body["error"], body["code"]) == ("Internal server error", "INTERNAL_ERROR")


@pytest.mark.parametrize("path", ["on-whatsapp/not-a-number", "contacts/not-a-number"])
def test_a_phone_in_the_path_is_named_phone_in_errors(client, runtime, account, path):
    session_id = client.post("/api/sessions", json={"name": "Shop"}, headers=account.headers).get_json()["sessionId"]
    response = client.get(f"/api/sessions/{session_id}/{path}", headers=account.headers)
    assert response.status_code == 400
    body = response.get_json()
    assert (body["code"], body["field"]) == ("INVALID_NUMBER", "phone")
    assert body["message"].startswith("'phone' must be a phone number")
