"""The simulator engine on its own (no Flask), and its fault switches over HTTP and CLI."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from engines import EngineError, EngineEvent, EngineEventKind, EngineSettings, engine_create
from engines.base import QR_EXPIRED_REASON
from engines.simulator import LocalConnections, SimulatorEngine, number_exists, simulated_phone
from tests.helpers import wait_for


class Recorder:
    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: EngineEvent) -> None:
        with self.lock:
            self.events.append(event)

    def kinds(self, session_id: str) -> list[EngineEventKind]:
        with self.lock:
            return [e.kind for e in self.events if e.session_id == session_id]

    def last(self, kind: EngineEventKind) -> EngineEvent:
        with self.lock:
            return [e for e in self.events if e.kind == kind][-1]


@pytest.fixture
def faults() -> dict[str, set[str]]:
    return {}


@pytest.fixture
def engine(tmp_path, faults):
    recorder = Recorder()
    settings = EngineSettings(
        data_dir=tmp_path, public_url="https://gw.example", qr_refresh_seconds=30, timeout_seconds=0.2
    )
    engine = SimulatorEngine(recorder, settings, faults=lambda: faults)
    engine.recorder = recorder
    yield engine
    engine.shutdown()


def test_engine_create_knows_the_simulator_and_refuses_unknown_names(tmp_path):
    settings = EngineSettings(data_dir=tmp_path, public_url="http://x")
    engine = engine_create("simulator", lambda e: None, settings)
    assert engine.name == "simulator"
    engine.shutdown()
    with pytest.raises(ValueError, match="Unknown WA_ENGINE 'whatsapp-web'"):
        engine_create("whatsapp-web", lambda e: None, settings)


def test_numbers_ending_in_0000_are_not_on_whatsapp(engine):
    assert number_exists("919876543210")
    assert not number_exists("919876540000")
    assert engine.check_numbers("s1", ["14155550000", "14155551234"]) == {
        "14155550000": None,
        "14155551234": "14155551234@s.whatsapp.net",
    }


def test_pairing_needs_the_current_token_and_survives_a_restart(engine, tmp_path):
    engine.session_start("s1")
    qr = engine.recorder.last(EngineEventKind.QR).data
    assert qr["payload"].startswith("https://gw.example/sim/pair/s1/")
    with pytest.raises(EngineError) as refused:
        engine.pair("s1", "wrong-token")
    assert refused.value.code == "QR_EXPIRED"
    phone = engine.pair("s1", qr["payload"].rsplit("/", 1)[1])
    assert phone == simulated_phone("s1")
    assert engine.recorder.kinds("s1") == [EngineEventKind.QR, EngineEventKind.CONNECTED]
    assert engine.is_paired("s1")

    # A new engine over the same store reconnects without a QR, as after a restart.
    recorder = Recorder()
    again = SimulatorEngine(recorder, engine.settings)
    again.session_start("s1")
    assert recorder.kinds("s1") == [EngineEventKind.CONNECTED]
    assert recorder.last(EngineEventKind.CONNECTED).data["phone"] == phone
    again.session_logout("s1", "bye")
    assert not again.is_paired("s1")
    assert recorder.last(EngineEventKind.DISCONNECTED).data == {"reason": "bye", "loggedOut": True}
    again.shutdown()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("upstream_error", "WhatsApp server error"),
        ("overload", "overloaded"),
        ("timeout", "Timed out"),
    ],
)
def test_faults_turn_a_start_into_an_error_with_a_reason(engine, faults, fault, reason):
    faults["s1"] = {fault}
    engine.session_start("s1")
    error = engine.recorder.last(EngineEventKind.ERROR)
    assert reason in error.data["reason"]
    with pytest.raises(EngineError) as raised:
        engine.check_numbers("s1", ["14155551234"])
    assert raised.value.transient


def test_disconnect_fault_drops_and_restores_the_connection(engine, faults):
    engine.session_start("s1")
    engine.pair("s1", engine.recorder.last(EngineEventKind.QR).data["payload"].rsplit("/", 1)[1], "4915112345678")
    faults["s1"] = {"disconnect"}
    wait_for(lambda: EngineEventKind.RECONNECTING in engine.recorder.kinds("s1"))
    faults["s1"] = set()
    wait_for(lambda: engine.recorder.kinds("s1")[-1] == EngineEventKind.CONNECTED)
    assert engine.recorder.last(EngineEventKind.CONNECTED).data["phone"] == "4915112345678"


def test_disconnect_for_all_drops_every_connected_session_while_it_is_on(engine, faults):
    for session_id in ("s1", "s2", "s3"):
        engine.session_start(session_id)
    for session_id in ("s1", "s2"):
        engine.pair(session_id, _qr_token(engine, session_id))
    faults["*"] = {"disconnect"}
    wait_for(lambda: all(EngineEventKind.RECONNECTING in engine.recorder.kinds(sid) for sid in ("s1", "s2")))
    engine.session_start("s4")
    engine.pair("s4", _qr_token(engine, "s4"))  # connects while the fault is on: drops at once
    wait_for(lambda: engine.recorder.kinds("s4")[-1] == EngineEventKind.RECONNECTING)
    faults["s2"] = {"disconnect"}
    faults["*"] = set()
    wait_for(lambda: all(engine.recorder.kinds(sid)[-1] == EngineEventKind.CONNECTED for sid in ("s1", "s4")))
    assert engine.recorder.kinds("s2")[-1] == EngineEventKind.RECONNECTING  # its own fault still holds it
    assert engine.recorder.kinds("s3") == [EngineEventKind.QR]  # not connected: nothing to drop
    faults["s2"] = set()
    wait_for(lambda: engine.recorder.kinds("s2")[-1] == EngineEventKind.CONNECTED)
    assert engine.recorder.kinds("s1").count(EngineEventKind.RECONNECTING) == 1


def test_a_qr_code_lives_its_time_even_after_a_restart_then_the_session_gives_up(tmp_path, monkeypatch):
    now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return now[0]

    monkeypatch.setattr("engines.simulator.datetime", Clock)
    recorder = Recorder()
    settings = EngineSettings(data_dir=tmp_path, public_url="http://x", qr_refresh_seconds=30, qr_max_refreshes=1)
    engine = SimulatorEngine(recorder, settings)
    engine.shutdown()  # no ticker: this test ticks the clock itself
    engine.session_start("s1")
    now[0] += timedelta(seconds=10)
    engine.session_stop("s1", "restart")
    engine.session_start("s1")  # a new first code, good for 30 s from now
    now[0] += timedelta(seconds=21)
    engine._tick()
    assert [e.data["number"] for e in recorder.events if e.kind == EngineEventKind.QR] == [1, 1]
    now[0] += timedelta(seconds=9)
    engine._tick()
    assert [e.data["number"] for e in recorder.events if e.kind == EngineEventKind.QR] == [1, 1, 2]
    now[0] += timedelta(seconds=30)
    engine._tick()
    assert recorder.last(EngineEventKind.DISCONNECTED).data["reason"] == QR_EXPIRED_REASON
    assert engine.active_sessions() == []


def test_a_fault_switched_over_the_api_applies_to_the_very_next_send(client, account, shop, runtime):
    url = f"/api/simulator/faults?sessionId={shop}"
    send = f"/api/sessions/{shop}/send"
    assert client.put(url, json={"rejected": True}, headers=account.headers).get_json()["faults"] == ["rejected"]
    refused = client.post(send, json={"to": "919811112222", "message": "Hi"}, headers=account.headers)
    assert refused.get_json()["code"] == "REJECTED", refused.get_json()
    assert client.put(url, json={"rejected": False}, headers=account.headers).get_json()["faults"] == []
    sent = client.post(send, json={"to": "919811112222", "message": "Hi again"}, headers=account.headers)
    assert sent.status_code == 200, sent.get_json()
    assert [entry["text"] for entry in runtime.engine_host.engine.outbox(shop)] == ["Hi again"]


def _qr_token(engine, session_id: str) -> str:
    qr = [e for e in engine.recorder.events if e.kind == EngineEventKind.QR and e.session_id == session_id][-1]
    return qr.data["payload"].rsplit("/", 1)[1]


def test_fault_api_is_per_session_for_owners_and_global_for_admins(client, account, make_account, shop):
    url = "/api/simulator/faults"
    assert client.put(url, json={"timeout": True}, headers=account.headers).status_code == 403
    bad = client.put(f"{url}?sessionId={shop}", json={"meltdown": True}, headers=account.headers)
    assert bad.status_code == 400 and "Known faults: timeout" in bad.get_json()["message"]
    not_bool = client.put(f"{url}?sessionId={shop}", json={"timeout": "yes"}, headers=account.headers)
    assert not_bool.status_code == 400
    other = make_account()
    assert client.get(f"{url}?sessionId={shop}", headers=other.headers).status_code == 404


def test_upstream_fault_puts_a_connecting_session_in_error(client, runtime, runner, account):
    result = runner.invoke(args=["simulator", "fault", "upstream_error", "on"])
    assert result.exit_code == 0 and "upstream_error" in result.output
    session_id = client.post("/api/sessions", json={}, headers=account.headers).get_json()["sessionId"]
    status = wait_for(
        lambda: (
            (s := client.get(f"/api/sessions/{session_id}/status", headers=account.headers).get_json())["status"]
            == "error"
            and s
        )
    )
    assert "WhatsApp server error" in status["reason"]
    assert "upstream_error" in runner.invoke(args=["simulator", "faults"]).output
    runner.invoke(args=["simulator", "clear"])
    client.post(f"/api/sessions/{session_id}/connect", headers=account.headers)
    qr = client.get(f"/api/sessions/{session_id}/qr", headers=account.headers).get_json()
    assert qr["status"] == "pending"
    assert qr["qrCode"].startswith("data:image/png;base64,")


def _receipts(recorder: Recorder, session_id: str) -> list[tuple[str, str]]:
    with recorder.lock:
        return [
            (e.data["waId"], e.data["status"])
            for e in recorder.events
            if e.kind == EngineEventKind.RECEIPT and e.session_id == session_id
        ]


def test_receipts_still_owed_follow_the_session_after_a_restart(tmp_path):
    settings = EngineSettings(data_dir=tmp_path, public_url="https://gw.example", receipt_seconds=1.0)
    first = SimulatorEngine(Recorder(), settings)
    first.recorder = first.listener
    first.session_start("s1")
    first.pair("s1", _qr_token(first, "s1"))
    first.send_text("s1", "919876543210", "Hi", wa_id="W1")  # delivered after 1 s, read after 2 s
    first.send_text("s1", "919876543219", "Hi", wa_id="W2")  # delivered only: this contact never reads
    first.shutdown()  # the engine host goes away before any receipt is due
    time.sleep(1.1)  # the delivered receipts are late by now

    recorder = Recorder()
    again = SimulatorEngine(recorder, settings)
    again.session_start("s1")  # the linked device comes back
    wait_for(lambda: len(_receipts(recorder, "s1")) == 2, timeout=0.6, message="the late receipts, at once")
    assert sorted(_receipts(recorder, "s1")) == [("W1", "delivered"), ("W2", "delivered")]
    wait_for(lambda: ("W1", "read") in _receipts(recorder, "s1"), timeout=2, message="the read receipt, on time")
    # A send repeated after the crash is neither carried again nor receipted again.
    again.send_text("s1", "919876543210", "Hi", wa_id="W1")
    time.sleep(1.2)
    assert [entry["id"] for entry in again.outbox("s1")] == ["W1", "W2"]
    assert sorted(_receipts(recorder, "s1")) == [("W1", "delivered"), ("W1", "read"), ("W2", "delivered")]
    again.shutdown()


def test_receipts_reported_just_before_a_crash_are_reported_again(tmp_path):
    """The engine host may die between hearing a receipt and writing it: WhatsApp tells again."""
    settings = EngineSettings(data_dir=tmp_path, public_url="https://gw.example", receipt_seconds=0.1)
    recorder = Recorder()
    first = SimulatorEngine(recorder, settings)
    first.recorder = recorder
    first.session_start("s1")
    first.pair("s1", _qr_token(first, "s1"))
    first.send_text("s1", "919876543210", "Hi", wa_id="W1")
    wait_for(lambda: len(_receipts(recorder, "s1")) == 2, timeout=2, message="both receipts")
    first.shutdown()

    recorder = Recorder()
    again = SimulatorEngine(recorder, settings)
    again.session_start("s1")
    wait_for(lambda: len(_receipts(recorder, "s1")) == 2, timeout=2, message="the receipts again")
    assert _receipts(recorder, "s1") == [("W1", "delivered"), ("W1", "read")]
    again.shutdown()


def _host_engine(data_dir, host_id: str, connections) -> SimulatorEngine:
    settings = EngineSettings(data_dir=data_dir, public_url="https://gw.example", host_id=host_id)
    engine = SimulatorEngine(Recorder(), settings, connections=connections)
    engine.recorder = engine.listener
    return engine


def _paired_on(engine: SimulatorEngine, session_id: str) -> None:
    engine.session_start(session_id)
    token = engine.recorder.last(EngineEventKind.QR).data["payload"].rsplit("/", 1)[1]
    engine.pair(session_id, token)


def test_a_second_connection_of_a_session_replaces_the_first_over_redis(tmp_path):
    """Two simulators on one Redis (two engine hosts) start the same paired session: the
    first gets "stream replaced" as WhatsApp sends it and sends nothing more; the newest wins."""
    import fakeredis

    from services.platform.sim_connections import RedisConnections

    server = fakeredis.FakeServer()
    first = _host_engine(tmp_path / "a", "host-a", RedisConnections(fakeredis.FakeRedis(server=server)))
    second = _host_engine(tmp_path / "b", "host-b", RedisConnections(fakeredis.FakeRedis(server=server)))
    try:
        _paired_on(first, "s1")
        first.send_text("s1", "919876543210", "from a", wa_id="W1")
        # The pairing is shared (as through a shared store): copy the device to host b.
        (tmp_path / "b" / "simulator" / "s1.json").write_text((tmp_path / "a" / "simulator" / "s1.json").read_text())

        second.session_start("s1")
        assert second.recorder.kinds("s1") == [EngineEventKind.CONNECTED]
        wait_for(lambda: EngineEventKind.ERROR in first.recorder.kinds("s1"), timeout=3)
        replaced = first.recorder.last(EngineEventKind.ERROR)
        assert replaced.data["signal"] == "stream_replaced"
        assert "stream replaced" in replaced.data["reason"]
        assert first.active_sessions() == []

        with pytest.raises(EngineError) as refused:
            first.send_text("s1", "919876543210", "from a again", wa_id="W2")
        assert (refused.value.code, refused.value.transient) == ("SESSION_NOT_CONNECTED", True)
        second.send_text("s1", "919876543210", "from b", wa_id="W3")

        assert [(entry["id"], entry["host"]) for entry in first.outbox("s1")] == [("W1", "host-a")]
        assert [(entry["id"], entry["host"]) for entry in second.outbox("s1")] == [("W3", "host-b")]
        assert [e.kind for e in first.recorder.events if e.kind == EngineEventKind.ERROR] == [EngineEventKind.ERROR]
    finally:
        first.shutdown()
        second.shutdown()


def test_a_replaced_connection_refuses_a_send_before_its_ticker_notices(tmp_path):
    connections = LocalConnections()
    first = _host_engine(tmp_path / "a", "host-a", connections)
    second = _host_engine(tmp_path / "a", "host-a", connections)  # two simulators on one disk
    try:
        _paired_on(first, "s1")
        first._stopping.set()  # its ticker stands still: only the send can notice
        first._ticker.join(timeout=2)
        second.session_start("s1")
        with pytest.raises(EngineError) as refused:
            first.send_text("s1", "919876543210", "late", wa_id="W1")
        assert (refused.value.code, refused.value.transient) == ("SESSION_NOT_CONNECTED", True)
        assert first.recorder.last(EngineEventKind.ERROR).data["signal"] == "stream_replaced"
        assert first.outbox("s1") == []

        # Starting it again takes the device back: now the second one is replaced.
        first.session_start("s1")
        first.send_text("s1", "919876543210", "back", wa_id="W2")
        with pytest.raises(EngineError):
            second.send_text("s1", "919876543210", "lost", wa_id="W3")
        assert [entry["id"] for entry in first.outbox("s1")] == ["W2"]
    finally:
        first.shutdown()
        second.shutdown()


def _paired(engine, session_id: str = "s1") -> None:
    engine.session_start(session_id)
    engine.pair(session_id, engine.recorder.last(EngineEventKind.QR).data["payload"].rsplit("/", 1)[1])


def test_an_ack_that_never_comes_holds_the_send_until_it_comes_or_the_connection_ends(engine, faults):
    _paired(engine)
    faults["s1"] = {"ack_never_comes"}
    outcome: dict = {}

    def send(wa_id: str) -> None:
        try:
            outcome[wa_id] = engine.send_text("s1", "14155551234", "Hello", wa_id=wa_id)
        except EngineError as exc:
            outcome[wa_id] = exc

    first = threading.Thread(target=send, args=("SIMACK1",))
    first.start()
    wait_for(lambda: engine.carried("s1", "SIMACK1") is None, message="the send waiting for its ack")
    time.sleep(0.3)
    assert first.is_alive() and engine.outbox("s1") == []  # nothing carried, nothing answered
    faults.clear()  # the ack comes: carried once
    first.join(2)
    assert outcome["SIMACK1"].wa_id == "SIMACK1" and engine.carried("s1", "SIMACK1") is True

    faults["s1"] = {"ack_never_comes"}
    second = threading.Thread(target=send, args=("SIMACK2",))
    second.start()
    wait_for(lambda: engine.carried("s1", "SIMACK2") is None, message="the send waiting for its ack")
    engine.reconnect("s1")  # the connection it was sent on ends: it may be sent again
    second.join(2)
    assert outcome["SIMACK2"].code == "SESSION_NOT_CONNECTED" and outcome["SIMACK2"].transient
    assert engine.carried("s1", "SIMACK2") is False
    assert [entry["id"] for entry in engine.outbox("s1")] == ["SIMACK1"]


def test_a_deaf_session_hears_nothing_until_it_reconnects_then_gets_what_it_missed(tmp_path, faults):
    settings = EngineSettings(data_dir=tmp_path, public_url="https://gw.example", receipt_seconds=0.05)
    engine = SimulatorEngine(Recorder(), settings, faults=lambda: faults)
    engine.recorder = engine.listener
    try:
        _paired(engine)
        assert engine.probe("s1") is True
        faults["s1"] = {"deaf"}
        wait_for(lambda: engine.probe("s1") is False, message="the session going deaf")
        engine.send_text("s1", "14155551234", "Anyone there?", wa_id="SIMDEAF1")  # it goes out
        engine.receive("s1", "447911123456", "Hello?")
        time.sleep(0.4)  # its receipts fall due meanwhile
        assert engine.recorder.kinds("s1") == [EngineEventKind.QR, EngineEventKind.CONNECTED]

        engine.reconnect("s1")  # the switch is still on, but a new connection hears again
        assert engine.recorder.kinds("s1")[2:] == [
            EngineEventKind.RECONNECTING,
            EngineEventKind.CONNECTED,
            EngineEventKind.MESSAGE,
            EngineEventKind.RECEIPT,
            EngineEventKind.RECEIPT,
        ]
        time.sleep(0.3)
        assert engine.probe("s1") is True
    finally:
        engine.shutdown()
