"""Message quotas: reserved at send time, refunded for failures on WhatsApp's side (aulm's matrix)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from extensions import db
from models import User
from tests.helpers import pair_session, wait_for


@pytest.fixture
def config_overrides():
    # One quick retry, so a transient failure settles within the request's wait.
    return {"SEND_RETRY_DELAYS": [0.1], "OVERLOAD_BACKOFF_SECONDS": 3}


def _send(client, account, session_id, to="919876543210", text="Hello"):
    return client.post(f"/api/sessions/{session_id}/send", json={"to": to, "message": text}, headers=account.headers)


def _quota(client, account) -> dict:
    return client.get("/api/quota", headers=account.headers).get_json()["quota"]


def _fault(client, account, session_id, name, on=True):
    response = client.put(f"/api/simulator/faults?sessionId={session_id}", json={name: on}, headers=account.headers)
    assert response.status_code == 200, response.get_json()


def _set_quota(runner, *args):
    result = runner.invoke(args=["plans", "set-quota", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def shop_owner(starter):
    return starter


@pytest.fixture
def starter_shop(starter, shop):
    """A Starter account (1000 messages a day) with a connected session."""
    return starter, shop


# aulm's refund matrix, row by row: (simulator fault, HTTP status, code, refunded).
TRANSIENT = [
    ("timeout", 504, "ENGINE_TIMEOUT"),
    ("unreachable", 502, "UNREACHABLE"),
    ("upstream_error", 502, "UPSTREAM_ERROR"),
    ("auth_error", 502, "UPSTREAM_AUTH"),
    ("overload", 503, "OVERLOADED"),
]


@pytest.mark.parametrize(("fault", "status", "code"), TRANSIENT)
def test_a_failure_on_whatsapps_side_refunds_the_slot(client, runtime, starter_shop, fault, status, code):
    account, session_id = starter_shop
    _send(client, account, session_id)  # one slot that stays spent
    _fault(client, account, session_id, fault)

    response = _send(client, account, session_id, text="will fail")

    assert response.status_code == status
    body = response.get_json()
    assert (body["success"], body["code"], body["status"]) == (False, code, "failed")
    assert (body["quotaRefunded"], body["retryable"]) == (True, True)
    assert _quota(client, account)["used"] == 1
    assert response.headers["X-RateLimit-Limit"] == "1000"
    assert response.headers["X-RateLimit-Remaining"] == "999"
    assert runtime.engine_host.engine.outbox(session_id)[-1]["text"] == "Hello"  # nothing else went out


def test_an_overload_answers_503_with_retry_after_and_new_sends_back_off(client, runtime, starter_shop):
    account, session_id = starter_shop
    _fault(client, account, session_id, "overload")

    failed = _send(client, account, session_id)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "3"

    # While WhatsApp backs the session off, new sends are refused up front and cost nothing.
    _fault(client, account, session_id, "overload", on=False)
    refused = _send(client, account, session_id)
    assert refused.status_code == 503
    assert refused.get_json()["code"] == "ENGINE_OVERLOADED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3
    assert _quota(client, account)["used"] == 0


def test_an_unknown_recipient_keeps_the_slot(client, runtime, starter_shop):
    account, session_id = starter_shop
    response = _send(client, account, session_id, to="919876540000")
    assert response.status_code == 400
    body = response.get_json()
    assert (body["code"], body["quotaRefunded"], body["retryable"]) == ("NUMBER_NOT_ON_WHATSAPP", False, False)
    assert response.headers["X-RateLimit-Remaining"] == "999"
    assert _quota(client, account)["used"] == 1


def test_a_message_whatsapp_rejects_keeps_the_slot(client, runtime, starter_shop):
    account, session_id = starter_shop
    _fault(client, account, session_id, "rejected")
    response = _send(client, account, session_id)
    assert response.status_code == 400
    assert (response.get_json()["code"], response.get_json()["quotaRefunded"]) == ("REJECTED", False)
    assert _quota(client, account)["used"] == 1


def test_a_session_that_is_not_ready_keeps_the_slot(client, runtime, starter_shop):
    account, session_id = starter_shop
    _fault(client, account, session_id, "disconnect")

    wait_for(
        lambda: (
            client.get(f"/api/sessions/{session_id}/status", headers=account.headers).get_json()["status"]
            == "reconnecting"
        ),
        message="session dropping",
    )
    response = _send(client, account, session_id)
    assert response.status_code == 400
    assert response.get_json()["code"] == "SESSION_NOT_CONNECTED"
    assert response.headers["X-RateLimit-Remaining"] == "999"
    assert _quota(client, account)["used"] == 1


def test_a_bad_request_takes_no_slot(client, runtime, starter_shop):
    account, session_id = starter_shop
    assert _send(client, account, session_id, to="not a number").status_code == 400
    assert _send(client, account, session_id, text="").status_code == 400
    assert _quota(client, account)["used"] == 0


def test_a_refund_is_given_once_and_a_retry_takes_a_new_slot(app, client, runtime, starter_shop):
    account, session_id = starter_shop
    _fault(client, account, session_id, "upstream_error")
    message_id = _send(client, account, session_id).get_json()["messageId"]
    _fault(client, account, session_id, "upstream_error", on=False)
    assert _quota(client, account)["used"] == 0

    with app.app_context():
        from models import Message
        from services.accounts.quotas import quota_refund
        from services.messaging.lifecycle import message_retry

        message = db.session.get(Message, message_id)
        assert quota_refund(message) is False  # already refunded: nothing more comes back
        db.session.commit()
        message_retry(db.session.get(User, account.user_id), message_id)
    assert _quota(client, account)["used"] == 1


def test_the_daily_quota_runs_out_with_429_and_retry_after_until_utc_midnight(client, runtime, runner, starter_shop):
    account, session_id = starter_shop
    assert "2 messages a day" in _set_quota(runner, "starter", "--daily", "2")
    first = _send(client, account, session_id)
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("2", "1")
    assert _send(client, account, session_id).headers["X-RateLimit-Remaining"] == "0"

    refused = _send(client, account, session_id)

    assert refused.status_code == 429
    body = refused.get_json()
    assert body["code"] == "DAILY_QUOTA_EXCEEDED"
    assert body["quota"]["remaining"] == 0
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert refused.headers["X-RateLimit-Reset"] == str(int(midnight.timestamp()))
    seconds_left = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(int(refused.headers["Retry-After"]) - seconds_left) <= 5
    assert len(refused.headers.getlist("X-RateLimit-Limit")) == 1  # the quota, not the request limit too
    assert len(runtime.engine_host.engine.outbox(session_id)) == 2


def test_yesterdays_sends_do_not_count_today(client, runtime, runner, starter_shop, monkeypatch):
    account, session_id = starter_shop
    _set_quota(runner, "starter", "--daily", "1")
    assert _send(client, account, session_id).status_code == 200
    assert _send(client, account, session_id).status_code == 429
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    monkeypatch.setattr("services.accounts.quotas._now", lambda: tomorrow)
    assert _send(client, account, session_id).status_code == 200
    assert _quota(client, account)["used"] == 1


def test_usage_survives_a_lost_counter_and_a_deleted_session(app, client, runtime, runner, starter_shop):
    """The database is the record: with Redis's counters gone, the count starts again from
    the messages and the slots kept without one; a deleted session's slots stay taken."""
    account, session_id = starter_shop
    _set_quota(runner, "starter", "--daily", "3")
    assert _send(client, account, session_id).status_code == 200
    assert _send(client, account, session_id, to="919876540000").status_code == 400  # kept: unknown number
    with app.app_context():
        connection = app.extensions["wagate.redis"]
        for key in connection.scan_iter(match="wagate:quota:*"):
            connection.delete(key)
    assert _quota(client, account)["used"] == 2
    assert client.delete(f"/api/sessions/{session_id}", headers=account.headers).status_code in (200, 204)
    with app.app_context():
        for key in connection.scan_iter(match="wagate:quota:*"):
            connection.delete(key)
    assert _quota(client, account)["used"] == 2
    other = pair_session(client, account)
    assert _send(client, account, other).status_code == 200
    refused = _send(client, account, other)
    assert (refused.status_code, refused.get_json()["code"]) == (429, "DAILY_QUOTA_EXCEEDED")


def test_a_trial_has_a_fixed_total_then_ends(app, client, runtime, runner, make_account):
    account = make_account()  # the free plan is the trial
    session_id = pair_session(client, account)
    _set_quota(runner, "free", "--trial", "2", "--trial-days", "7")
    assert _send(client, account, session_id).status_code == 200
    assert _send(client, account, session_id).status_code == 200
    refused = _send(client, account, session_id)
    assert (refused.status_code, refused.get_json()["code"]) == (429, "TRIAL_QUOTA_EXCEEDED")
    assert _quota(client, account)["period"] == "trial"

    with app.app_context():  # seven days later, the trial is over whatever is left
        db.session.execute(
            update(User).where(User.id == account.user_id).values(created_at=datetime.now(UTC) - timedelta(days=8))
        )
        db.session.commit()
    _set_quota(runner, "free", "--trial", "100", "--trial-days", "7")
    ended = _send(client, account, session_id)
    assert (ended.status_code, ended.get_json()["code"]) == (402, "SUBSCRIPTION_REQUIRED")


def test_a_bulk_send_reserves_every_slot_or_none(client, runtime, runner, make_account):
    account = make_account(plan="growth")
    session_id = pair_session(client, account, phone=None)
    _set_quota(runner, "growth", "--daily", "3")
    contacts = ["919876543211", "919876543212", "919876543213", "919876543214"]

    too_many = client.post(
        "/api/whatsapp/bulk-send", json={"contacts": contacts, "message": "Hi", "delay": 0}, headers=account.headers
    )
    assert too_many.status_code == 429
    assert "3 left, 4 needed" in too_many.get_json()["message"]
    assert _quota(client, account)["used"] == 0

    fits = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": contacts[:2] + ["919876540000"], "message": "Hi", "delay": 0},
        headers=account.headers,
    )
    assert fits.status_code in (200, 202), fits.get_json()
    assert _quota(client, account)["used"] == 3  # the unknown number's slot is kept
    assert session_id


def test_test_keys_and_plans_without_a_limit_show_no_quota_headers_of_their_own(client, runtime, make_account):
    account = make_account(plan="enterprise")
    session_id = pair_session(client, account)
    response = _send(client, account, session_id)
    assert response.status_code == 200
    # An unlimited plan's send carries the request rate limit, as every API route does.
    assert response.headers["X-RateLimit-Limit"] == "100000"  # TestConfig.API_RATE_LIMIT
    quota = _quota(client, account)
    assert (quota["limit"], quota["used"], quota["remaining"]) == (None, 1, None)

    key = client.post("/api/keys", json={"name": "ci", "mode": "test"}, headers=account.headers).get_json()["key"]
    simulated = client.post(
        f"/api/sessions/{session_id}/send",
        json={"to": "919876543210", "message": "Hi"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert simulated.get_json()["simulated"] is True
    assert _quota(client, account)["used"] == 1


def test_the_plans_command_lists_quotas(runner):
    output = runner.invoke(args=["plans", "list"]).output
    assert "free" in output and "100 messages in total over the first 7 days (trial)" in output
    assert "1000 messages a day (UTC)" in output
    assert "enterprise" in output and "unlimited messages" in output
    refused = runner.invoke(args=["plans", "set-quota", "starter"])
    assert refused.exit_code != 0 and "--daily" in refused.output


def test_concurrent_sends_never_overshoot_the_limit(app, runtime, runner, starter_shop):
    """Twelve sends at once for the last five slots: five go, seven get 429, none more."""
    account, session_id = starter_shop
    _set_quota(runner, "starter", "--daily", "5")
    barrier = threading.Barrier(12)

    def send(index: int) -> int:
        client = app.test_client()
        barrier.wait()
        return _send(client, account, session_id, to=f"9198765{index:04d}1").status_code

    with ThreadPoolExecutor(12) as pool:
        codes = sorted(pool.map(send, range(12)))
    assert (codes.count(429), sum(code in (200, 202) for code in codes)) == (7, 5), codes
    assert _quota(app.test_client(), account)["used"] == 5
