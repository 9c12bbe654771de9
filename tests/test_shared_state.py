"""Nodes with separate disks on one PostgreSQL and Redis: nothing a node needs is on another's.

The stack of tests/test_integration.py (gunicorn web and engine host `host-a` on DATA_DIR
`data`), and a second engine host, `host-b`, on its own DATA_DIR `data-b`. A session paired
on host-a, which is then killed, is taken over by host-b still paired (no QR), sends what was
queued meanwhile and gets the receipts host-a's sends were owed; media sent and received
through the web (on host-a's disk) crosses to host-b and back through PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import PNG, data_url
from tests.test_integration import (
    DB_NAME,
    DB_USER,
    STARTUP_SECONDS,
    VENV_BIN,
    Stack,
    User,
    connected_user,
    pair_session,
    session_status,
    stack_started,
    wait_until,
)

pytestmark = pytest.mark.integration

PHONE = "919876543210"
CONTACT = "919811112222"
HOST_B = "host-b"
RECEIPT_SECONDS = 2  # the simulator's delivered receipt (read: twice that)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    settings = {
        "SIMULATOR_RECEIPT_SECONDS": str(RECEIPT_SECONDS),
        # A killed host's heartbeat and leases run out in 3 s; the other host adopts its sessions then.
        "ENGINE_HOST_HEARTBEAT_SECONDS": "1",
        "SESSION_LEASE_SECONDS": "3",
        "SEND_WAIT_SECONDS": "1",
    }
    with stack_started("shared-state", settings, worker=False) as started:
        yield started


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[User]:
    with connected_user(stack, "alice") as user:
        yield user


def database_url(stack: Stack) -> str:
    return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{stack.pg_port}/{DB_NAME}"


def send(user: User, session_id: str, body: dict) -> str:
    response = user.request("POST", f"/api/sessions/{session_id}/send", json={"to": CONTACT, **body})
    assert response.status_code in (200, 202), response.text
    return response.json()["messageId"]


def statuses(stack: Stack, message_ids: list[str]) -> dict[str, str]:
    return dict(stack.sql("SELECT id, status FROM messages WHERE id = ANY(%s)", message_ids))


def outbox(stack: Stack, data_dir: str, session_id: str) -> list[dict]:
    import json

    path = stack.root / data_dir / "engines" / "simulator" / "outbox" / f"{session_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def execute(stack: Stack, statement: str, *params) -> None:
    """A statement that returns no rows, on the stack's database."""
    import psycopg

    conninfo = f"host=127.0.0.1 port={stack.pg_port} user={DB_USER} dbname={DB_NAME} connect_timeout=5"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(statement, params)


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_a_session_taken_over_by_a_host_with_another_disk_keeps_pairing_sends_and_media(
    stack: Stack, alice: User
) -> None:
    with stack.diagnostics():
        session_id = pair_session(stack, alice, "moving", PHONE).session_id
        wait_until(lambda: session_status(alice, session_id)["status"] == "connected", 15, "the session on host-a")
        assert stack.sql("SELECT engine_host FROM wa_sessions WHERE id = %s", session_id) == [("host-a",)]

        # Sent by host-a, killed before its receipts came (WhatsApp owes them to the session);
        # host-b starts meanwhile, on a disk of its own.
        first = send(alice, session_id, {"message": "before the move"})
        wait_until(lambda: statuses(stack, [first])[first] == "sent", 10, "host-a to send")
        stack.processes["engine-host"].kill()
        assert statuses(stack, [first])[first] == "sent", "its receipts came before the kill: too late to test"
        events_at_kill = len(alice.events.snapshot())
        stack.start(
            "engine-host-b",
            [str(VENV_BIN / "flask"), "--app", "app", "engine-host", "--id", HOST_B],
            env={**stack.env, "DATA_DIR": str(stack.root / "data-b")},
        )
        queued = [send(alice, session_id, {"message": f"while no host holds it {n}"}) for n in range(2)]

        def held_by_b() -> bool:
            held = stack.sql("SELECT engine_host, status FROM wa_sessions WHERE id = %s", session_id)
            return held == [(HOST_B, "connected")]

        wait_until(held_by_b, STARTUP_SECONDS, "host-b to take the session over, connected")
        status = session_status(alice, session_id)
        assert status["phone"] == PHONE and status["hasQR"] is False, status
        after_kill = alice.events.snapshot()[events_at_kill:]
        assert not [name for name, data in after_kill if name == "qr"], after_kill

        # An image sent through the web (host-a's disk) for the session host-b holds.
        image = send(alice, session_id, {"image": {"data": data_url(PNG), "caption": "moved"}})
        sent = [first, *queued, image]
        wait_until(
            lambda: set(statuses(stack, sent).values()) == {"read"},
            20,
            "every message to be read",
            interval=0.2,
        )
        wa_ids = dict(stack.sql("SELECT id, wa_id FROM messages WHERE id = ANY(%s)", sent))
        carried = {entry["id"]: entry for entry in outbox(stack, "data-b", session_id)}
        assert {wa_ids[message_id] for message_id in [*queued, image]} <= set(carried), carried
        assert carried[wa_ids[image]]["media"]["sha256"] == hashlib.sha256(PNG).hexdigest()
        assert carried[wa_ids[image]]["media"]["size"] == len(PNG)
        assert wa_ids[first] in {entry["id"] for entry in outbox(stack, "data", session_id)}

        # A contact sends a picture: handed to host-b through the web, kept, served by the web.
        response = alice.request(
            "POST",
            f"/api/simulator/sessions/{session_id}/inbound",
            json={"from": CONTACT, "image": {"data": data_url(PNG), "caption": "from the phone"}},
        )
        assert response.status_code == 202, response.text

        query = "SELECT count(*) FROM messages WHERE session_id = %s AND direction = 'inbound'"
        wait_until(lambda: stack.sql(query, session_id) == [(1,)], 15, "the inbound picture")
        log = alice.request("GET", "/api/messages", params={"direction": "inbound", "limit": 1}).json()
        inbound = log["messages"][0]
        served = alice.request("GET", inbound["mediaUrl"].removeprefix(stack.base_url))
        assert served.status_code == 200 and served.content == PNG
        assert served.headers["Content-Length"] == str(len(PNG))

        # None of it is on either disk: devices, receipts and media are in PostgreSQL.
        for data_dir in ("data", "data-b"):
            assert files_under(stack.root / data_dir / "media") == []
            simulator = stack.root / data_dir / "engines" / "simulator"
            assert sorted(path.name for path in simulator.glob("*") if path.is_file()) == []
        stored = {name for (name,) in stack.sql("SELECT DISTINCT name FROM stored_files")}
        assert f"engines/simulator/{session_id}.json" in stored, stored
        assert not any(name.startswith("media/simulated/") for name in stored), stored  # taken once read
        stack.assert_running("engine-host-b", "web")


def test_stored_files_are_kept_in_parts_and_read_back_whole(stack: Stack, tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from services.platform.shared_state import FILE_PART_BYTES, PostgresState

    engine = create_engine(database_url(stack))
    try:
        state = PostgresState(engine, "media")
        data = os.urandom(2 * FILE_PART_BYTES + 123)
        upload = tmp_path / "upload"
        upload.write_bytes(data)
        with upload.open("rb") as file:
            state.file_put("outgoing/big", file)
        parts = stack.sql("SELECT part, length(data) FROM stored_files WHERE name = 'media/outgoing/big' ORDER BY part")
        assert parts == [(0, FILE_PART_BYTES), (1, FILE_PART_BYTES), (2, 123)]
        assert state.file_get("outgoing/big") == data
        streamed, size = state.file_open("outgoing/big")
        with streamed:
            assert (streamed.read(), size) == (data, len(data))

        state.file_put("outgoing/big", b"")  # replaced whole: an empty file still exists
        assert state.file_get("outgoing/big") == b""
        empty, size = state.file_open("outgoing/big")
        with empty:
            assert (empty.read(), size) == (b"", 0)
        state.file_delete("outgoing/big")
        assert state.file_get("outgoing/big") is None and state.file_open("outgoing/big") is None
        assert PostgresState(engine, "engines").file_get("media/outgoing/big") is None
    finally:
        engine.dispose()


def test_owed_receipts_are_kept_once_until_reported(stack: Stack) -> None:
    """The simulator's receipt book on PostgreSQL: a send repeated after a crash owes its
    receipts once; a session coming back is owed those not reported yet, and lately reported."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine

    from services.platform.shared_state import PostgresReceiptBook

    engine = create_engine(database_url(stack))
    try:
        book = PostgresReceiptBook(engine)
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        delivered, read = ("W1", "delivered", due), ("W1", "read", due + timedelta(seconds=1))
        assert book.add("book", [delivered, read]) == [delivered, read]
        later = ("W2", "delivered", due + timedelta(milliseconds=500))
        assert book.add("book", [delivered, later]) == [later]
        book.reported([("book", "W1", "delivered")])
        assert book.owed("book") == [delivered, later, read]
        execute(stack, "UPDATE simulator_receipts SET reported_at = reported_at - 60 WHERE session_id = 'book'")
        assert book.owed("book") == [later, read]
    finally:
        engine.dispose()


@pytest.mark.neonize
def test_neonize_keeps_devices_and_its_sent_ledger_in_postgresql(stack: Stack, tmp_path: Path) -> None:
    """A device store made by the real Go library in the session's schema, and the sent ledger
    in PostgreSQL: an engine on another folder (another node) finds both."""
    neonize = pytest.importorskip("engines.neonize")  # loads neonize as the engine needs it
    assert neonize
    from neonize.client import ClientFactory
    from sqlalchemy import create_engine

    from engines.neonize.gate import GATE
    from services.platform.shared_state import PostgresState
    from tests.test_neonize_engine import PHONE as NEONIZE_PHONE
    from tests.test_neonize_engine import Engine

    engine = create_engine(database_url(stack))
    try:
        state = PostgresState(engine, "engines")
        host_a = Engine(tmp_path / "a", state=state)
        try:
            stores = host_a.engine.stores
            assert stores.kind == "postgresql" and not host_a.engine.is_paired("s1")
            stores.prepare("s1")
            with GATE.exclusive():  # whatsmeow creates its tables in the session's schema
                assert ClientFactory.get_all_devices_from_db(stores.name("s1")) == []
            execute(
                stack,
                "INSERT INTO wa_s1.whatsmeow_device (jid, registration_id, noise_key, identity_key, signed_pre_key,"
                " signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key,"
                " adv_device_sig, push_name) VALUES (%s, 4242, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s, 'Shop')",
                f"{NEONIZE_PHONE}:12@s.whatsapp.net",
                *(os.urandom(n) for n in (32, 32, 32, 64, 32, 16, 64, 32, 64)),
            )
            with GATE.exclusive():  # and reads the device back from there
                devices = ClientFactory.get_all_devices_from_db(stores.name("s1"))
            assert [device.JID.User for device in devices] == [f"{NEONIZE_PHONE}:12"]
            assert host_a.engine.is_paired("s1") and stores.phone("s1") == NEONIZE_PHONE

            host_a.online("s1")
            first = host_a.engine.send_text("s1", "6281234567890", "Once", wa_id="3EB0CCCCCCCCCCCCCCCCCC")
        finally:
            host_a.engine.shutdown()
        assert stack.sql("SELECT whatsapp_id IS NOT NULL FROM neonize_sent WHERE wa_id = '3EB0CCCCCCCCCCCCCCCCCC'") == [
            (True,)
        ]

        host_b = Engine(tmp_path / "b", state=state)
        try:
            assert host_b.engine.is_paired("s1") and not (tmp_path / "b" / "engines" / "neonize").exists()
            host_b.online("s1")
            again = host_b.engine.send_text("s1", "6281234567890", "Once", wa_id="3EB0CCCCCCCCCCCCCCCCCC")
            assert again == first and host_b.go.sent == []
        finally:
            host_b.engine.shutdown()
        host_b.engine.stores.clear("s1")
    finally:
        engine.dispose()
