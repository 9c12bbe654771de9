"""The engine host through store outages, in the embedded runtime: what WhatsApp reports
while the database or Redis is out of reach waits in the host's spool and is applied in
order once it answers (also by a host started afterwards); send lines hold their messages
and send each once afterwards; sends Redis forgot are lined up again from the database.

The database "goes down" by failing every statement as a dropped server would; Redis by
fakeredis's own switch (FakeServer.connected).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy.exc
from sqlalchemy import event, select

from engines import EngineEvent, EngineEventKind
from extensions import db
from models import Message
from roles.engine_events import SendsSettled
from roles.event_spool import EventSpool, spool_path
from roles.runtime import EmbeddedRuntime
from services.messaging.lifecycle import SendSettled
from tests.helpers import wait_for


class DatabaseSwitch:
    """The app's database, made unreachable on demand: every statement then fails."""

    def __init__(self, app) -> None:
        with app.app_context():
            self.engine = db.engine
        self.down = False
        event.listen(self.engine, "before_cursor_execute", self._statement)

    def _statement(self, connection, cursor, statement, *args) -> None:
        if self.down:
            reason = sqlite3.OperationalError("server closed the connection unexpectedly")
            raise sqlalchemy.exc.OperationalError(statement, None, reason)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)


@pytest.fixture
def database(app) -> Iterator[DatabaseSwitch]:
    switch = DatabaseSwitch(app)
    yield switch
    switch.down = False
    switch.close()


def _redis_server(app):
    return app.extensions["wagate.redis"].connection_pool.connection_kwargs["server"]


def _send(client, account, session_id, to="919876543219", text="Hello") -> str:
    body = {"to": to, "message": text}
    response = client.post(f"/api/sessions/{session_id}/send", json=body, headers=account.headers)
    assert response.status_code in (200, 202), response.get_json()
    return response.get_json()["messageId"]


def _message(app, message_id: str) -> Message:
    with app.app_context():
        message = db.session.get(Message, message_id)
        db.session.expunge(message)
        return message


def _receipt(session_id: str, wa_id: str, status: str) -> EngineEvent:
    return EngineEvent(
        EngineEventKind.RECEIPT, session_id, {"waId": wa_id, "status": status, "timestamp": datetime.now(UTC)}
    )


def _inbound(session_id: str, wa_id: str, text: str) -> EngineEvent:
    data = {"waId": wa_id, "sender": "447911123456", "text": text, "timestamp": datetime.now(UTC)}
    return EngineEvent(EngineEventKind.MESSAGE, session_id, data)


def _inbound_texts(app, session_id: str) -> list[str]:
    with app.app_context():
        query = select(Message.body).where(Message.session_id == session_id, Message.direction == "inbound")
        return list(db.session.scalars(query.order_by(Message.created_at)))


def test_events_that_arrive_while_the_database_is_down_wait_in_the_spool(app, client, account, shop, runtime, database):
    host = runtime.engine_host
    # A number ending in 9 never reads: the message rests at "delivered" until the test's receipt.
    message_id = _send(client, account, shop)
    wait_for(lambda: _message(app, message_id).status == "delivered", message="the delivered receipt")
    wa_id = _message(app, message_id).wa_id

    database.down = True
    host.events.put(_inbound(shop, "IN-1", "first, while the database is down"))
    host.events.put(_receipt(shop, wa_id, "read"))
    host.events.put(_inbound(shop, "IN-2", "second"))
    wait_for(lambda: host.spool.pending == 3, message="the events to be spooled")
    assert [item.kind for _, item in host.spool.head(10)] == ["message", "receipt", "message"]
    time.sleep(0.3)
    assert host.spool.pending == 3  # nothing applied, nothing dropped while it is down

    database.down = False
    wait_for(lambda: host.spool.pending == 0, timeout=10, message="the spool to be applied")
    assert _message(app, message_id).status == "read"
    assert _inbound_texts(app, shop) == ["first, while the database is down", "second"]
    assert (host.spooled, host.spool_applied) == (3, 3)


def test_events_wait_while_redis_is_down_so_that_their_events_go_out_too(app, client, account, shop, runtime):
    host = runtime.engine_host
    server = _redis_server(app)
    server.connected = False
    try:
        host.events.put(_inbound(shop, "IN-R", "while Redis is down"))
        wait_for(lambda: host.spool.pending == 1, message="the event to be spooled")
        assert _inbound_texts(app, shop) == []  # not stored without its event
    finally:
        server.connected = True
    wait_for(lambda: host.spool.pending == 0, timeout=10, message="the spool to be applied")
    assert _inbound_texts(app, shop) == ["while Redis is down"]
    inbound = client.get("/api/messages?direction=inbound", headers=account.headers).get_json()["messages"]
    assert [m["message"] for m in inbound] == ["while Redis is down"]


def test_a_host_started_later_applies_what_its_spool_holds(app, client, account, shop, runtime, database):
    message_id = _send(client, account, shop)
    wait_for(lambda: _message(app, message_id).status == "delivered", message="the delivered receipt")
    wa_id = _message(app, message_id).wa_id
    database.down = True
    runtime.engine_host.events.put(_receipt(shop, wa_id, "read"))
    wait_for(lambda: runtime.engine_host.spool.pending == 1, message="the receipt to be spooled")
    runtime.stop()  # the host stops with its spool on disk
    database.down = False

    restarted = EmbeddedRuntime(app)
    try:
        assert restarted.engine_host.spool.pending == 1
        restarted.start()
        assert restarted.engine_host.spool.pending == 0  # applied before the host took its sessions up
        assert _message(app, message_id).status == "read"
    finally:
        restarted.stop()


def test_a_send_lines_outcomes_are_spooled_and_its_line_waits(app, client, account, shop, runtime, database):
    """Outcomes a line could not have written are kept; the line goes on only once they are."""
    host = runtime.engine_host
    message_id = _send(client, account, shop, to="919876543211")
    wait_for(lambda: _message(app, message_id).status == "read", message="the message to be read")
    database.down = True
    settled = SendsSettled(shop, [SendSettled(message_id, "sent", datetime.now(UTC))], [None])
    host.events.put(settled)
    assert settled.written.wait(5)  # on disk: the line goes on
    assert host.spool.pending == 1
    assert host._step_in_context(shop) is not None  # and its next step waits for the spool
    database.down = False
    wait_for(lambda: host.spool.pending == 0, timeout=10, message="the spool to be applied")


def _all_sent(app, message_ids: list[str]) -> bool:
    return all(_message(app, message_id).status in ("sent", "delivered", "read") for message_id in message_ids)


def _sent_once(app, runtime, session_id: str, message_ids: list[str]) -> None:
    """Each message went out on the simulated network once, its one attempt spent once."""
    messages = [_message(app, message_id) for message_id in message_ids]
    carried = [entry["id"] for entry in runtime.engine_host.engine.outbox(session_id)]
    assert sorted(carried) == sorted(message.wa_id for message in messages)
    assert [message.attempts for message in messages] == [1] * len(messages)


# Sends answer 202 at once and then wait their turn (a second apart) in the session's queue.
PACED = {"SEND_WAIT_SECONDS": 0, "PACE_MIN_GAP_SECONDS": 1.0}


@pytest.mark.parametrize("config_overrides", [PACED])
def test_send_lines_ride_out_a_database_outage_and_send_each_message_once(
    app, client, account, shop, runtime, database, caplog, monkeypatch
):
    monkeypatch.setattr(logging.getLogger("roles.send_lines"), "disabled", False)  # (Alembic's logging config)
    caplog.set_level(logging.INFO, logger="roles.send_lines")
    ids = [_send(client, account, shop, to=f"91987654{i:03d}1") for i in range(1, 5)]
    # The first is sent at once (and read soon after); the next waits its turn until the outage.
    wait_for(lambda: _message(app, ids[0]).status == "read", message="the first message to be read")
    assert [_message(app, message_id).status for message_id in ids[1:]] == ["queued"] * 3
    database.down = True
    time.sleep(1.5)  # the line meets the outage and backs off
    database.down = False
    wait_for(lambda: _all_sent(app, ids), timeout=15, message="every message to be sent after the outage")
    _sent_once(app, runtime, shop, ids)
    # The line met the outage, said so once, and once more when it was over.
    said = [record.getMessage() for record in caplog.records if record.name == "roles.send_lines"]
    assert len(said) == 2 and "trying again with backoff" in said[0] and "answers again" in said[1], said


@pytest.mark.parametrize("config_overrides", [PACED])
def test_sends_redis_forgot_are_lined_up_again_from_the_database(app, client, account, shop, runtime, monkeypatch):
    monkeypatch.setattr("jobs.worker.REGISTRATION_CHECK_SECONDS", 0.2)
    connection = app.extensions["wagate.redis"]
    ids = [_send(client, account, shop, to=f"91987655{i:03d}1") for i in range(1, 5)]
    connection.flushall()  # Redis restarted without its data
    wait_for(lambda: _all_sent(app, ids), timeout=15, message="every message to be sent")
    _sent_once(app, runtime, shop, ids)
    # The host's job loop is registered again, and takes the job of a new send.
    wait_for(lambda: runtime.engine_host.worker.key.encode() in connection.smembers("rq:workers"), timeout=5)
    after = _send(client, account, shop, to="919876559991")
    wait_for(lambda: _all_sent(app, [after]), message="a send made afterwards")


def test_the_spool_keeps_dates_bytes_and_order_across_a_reopen(tmp_path):
    path = spool_path(tmp_path, "host/a b")
    assert path.name == "host_a_b.db"
    spool = EventSpool(path)
    assert not path.exists()  # made only once something is spooled
    at = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    media = EngineEvent(EngineEventKind.MESSAGE, "s1", {"waId": "W1", "timestamp": at, "media": b"\x00\xffjpeg"})
    sends = SendsSettled("s1", [SendSettled("m1", "failed", at, "REJECTED", "no")], ["REJECTED"])
    spool.add([media, sends, _receipt("s1", "W0", "read")])
    spool.close()

    again = EventSpool(path)
    assert again.pending == 3
    entries = again.head(10)
    assert [item.kind if isinstance(item, EngineEvent) else "sends" for _, item in entries] == [
        "message",
        "sends",
        "receipt",
    ]
    assert entries[0][1] == media
    assert entries[1][1].sends == sends.sends and entries[1][1].codes == ["REJECTED"]
    again.remove([entries[0][0], entries[1][0]])
    assert again.pending == 1
    again.close()
    assert EventSpool(path).pending == 1
