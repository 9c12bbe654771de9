from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from extensions import db, socketio
from models import Message
from tests.helpers import wait_for, without_cursor


def _bulk(client, account, contacts, delay=0, message="Hi all"):
    return client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": contacts, "message": message, "delay": delay},
        headers=account.headers,
    )


def test_bulk_needs_the_growth_plan(client, account, shop):
    response = _bulk(client, account, ["919876543210"])
    assert response.status_code == 403
    body = response.get_json()
    assert (body["error"], body["code"]) == ("Feature not available on your plan", "FEATURE_NOT_AVAILABLE")


@pytest.mark.parametrize(
    ("contacts", "code"),
    [([], "INVALID_CONTACTS"), ("919876543210", "INVALID_CONTACTS"), (None, "INVALID_CONTACTS")],
)
def test_bad_contact_lists_are_400(client, growth_session, contacts, code):
    account, _ = growth_session
    response = _bulk(client, account, contacts)
    assert (response.status_code, response.get_json()["code"]) == (400, code)


def test_contacts_that_are_not_numbers_are_refused_one_by_one_and_echoed_as_given(client, growth_session):
    account, _ = growth_session
    contacts = [None, {}, ["x"], True, "919876543210", {"number": 12}]
    response = _bulk(client, account, contacts)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["total"], body["sent"], body["failed"]) == (6, 1, 5)
    refused = [result for result in body["results"] if result["status"] == "Failed"]
    assert [result["contact"] for result in refused[:4]] == [None, {}, ["x"], True]
    for index, result in enumerate(refused[:4]):
        assert result["success"] is False
        assert result["error"].startswith(f"contacts[{index}] is not a phone number")
    assert refused[4] == {"contact": "12", "success": False, "status": "Failed", "error": "Invalid phone number"}


@pytest.mark.parametrize("config_overrides", [{"BULK_MAX_CONTACTS": 3, "BULK_MIN_DELAY_MS": 250}])
def test_batch_size_is_bounded_and_the_delay_has_a_floor(client, growth_session):
    account, _ = growth_session
    too_many = _bulk(client, account, [f"91987654321{i}" for i in range(4)])
    assert (too_many.status_code, too_many.get_json()["code"]) == (400, "TOO_MANY_CONTACTS")
    body = _bulk(client, account, ["919876543210", "919876543211"], delay=0).get_json()
    assert body["delay"] == 250
    assert (
        client.post(
            "/api/whatsapp/bulk-send",
            json={"contacts": ["919876543210"], "message": "x", "delay": "1s"},
            headers=account.headers,
        ).status_code
        == 400
    )


def test_paced_sends_keep_the_delay_and_report_progress_live(app, client, growth_session, runtime):
    account, session_id = growth_session
    socket = socketio.test_client(app, flask_test_client=client, auth={"token": account.token})
    contacts = [f"9198765432{i:02d}" for i in range(4)]
    body = _bulk(client, account, contacts, delay=200).get_json()
    assert (body["total"], body["sent"], body["failed"]) == (4, 4, 0)
    sent_at = [datetime.fromisoformat(m["at"]) for m in runtime.engine_host.engine.outbox(session_id)]
    assert [m["to"] for m in runtime.engine_host.engine.outbox(session_id)] == contacts
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(sent_at, sent_at[1:], strict=False)]
    assert all(gap >= 0.19 for gap in gaps), gaps
    progress: list[dict] = []  # the last event follows the finished batch: wait for it too
    wait_for(
        lambda: (
            progress.extend(p["args"][0] for p in socket.get_received() if p["name"] == "bulk_progress")
            or (progress and progress[-1]["status"] == "finished")
        ),
        message="the finished batch's progress event",
    )
    assert without_cursor(progress[-1]) == {
        "batchId": body["batchId"],
        "sessionId": session_id,
        "status": "finished",
        "total": 4,
        "sent": 4,
        "failed": 0,
        "pending": 0,
    }


def test_two_batches_on_one_session_share_its_pace(client, growth_session, runtime):
    account, session_id = growth_session
    first = _bulk(client, account, ["919876543210", "919876543211"], delay=300).get_json()
    second = _bulk(client, account, ["919876543212", "919876543213"], delay=300).get_json()
    assert first["sent"] == 2 and second["sent"] == 2
    sent_at = sorted(datetime.fromisoformat(m["at"]) for m in runtime.engine_host.engine.outbox(session_id))
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(sent_at, sent_at[1:], strict=False)]
    assert all(gap >= 0.29 for gap in gaps), gaps


def test_a_batch_is_stored_in_one_insert_each_message_with_its_own_id(app, client, growth_session):
    account, _ = growth_session
    contacts = [f"9198765{i:05d}" for i in range(2500)]
    inserts: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("INSERT INTO messages"):
            inserts.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", note)
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()  # scheduled: stored, not sent yet
    body = client.post(
        "/api/whatsapp/bulk-send",
        json={"contacts": contacts, "message": "Stored at once", "delay": 0, "sendAt": at},
        headers=account.headers,
    ).get_json()
    assert (body["total"], body["pending"], len(inserts)) == (2500, 2500, 1)
    with app.app_context():
        messages = db.session.scalars(select(Message).where(Message.batch_id == body["batchId"])).all()
    assert sorted(message.phone for message in messages) == contacts
    assert len({message.id for message in messages}) == len({message.wa_id for message in messages}) == 2500
    assert {(m.status, m.direction, m.type, m.attempts) for m in messages} == {("queued", "outbound", "text", 0)}
    assert all(message.created_at and message.updated_at for message in messages)
    assert [result["messageId"] for result in body["results"]] == [
        message.id for message in sorted(messages, key=lambda message: message.position)
    ]


def test_a_batch_longer_than_a_chunk_is_sent_once_each_in_list_order(client, growth_session, runtime, monkeypatch):
    account, session_id = growth_session
    monkeypatch.setattr("services.messaging.bulk.DISPATCH_CHUNK", 3)
    contacts = [f"9198765432{i:02d}" for i in range(8)]
    body = _bulk(client, account, contacts, delay=0).get_json()
    assert (body["total"], body["sent"], body["failed"]) == (8, 8, 0)
    assert [m["to"] for m in runtime.engine_host.engine.outbox(session_id)] == contacts
