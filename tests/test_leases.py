"""Session leases on one engine host: the generation that fences a host off once another
took a session, placement by room, rebalancing and drain. The same over real PostgreSQL,
Redis and several engine host processes: tests/test_lease_failover.py."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import update

from engines import EngineEvent, EngineEventKind
from extensions import db, queues
from jobs.queues import engine_host_queue_name
from models import Message, WaSession
from models.base import utcnow
from roles.engine_events import LEASE_STAMP, engine_event_apply
from services.hosts.leases import session_place, sessions_named
from services.hosts.routing import host_heartbeat, hosts_holding
from tests.helpers import pair_session, wait_for


def _lease_moves(reason: str) -> float:
    """The lease moves this process counted for `reason` (what /metrics shows)."""
    return REGISTRY.get_sample_value("wagate_session_lease_moves_total", {"reason": reason}) or 0.0


def _session(app, session_id: str) -> WaSession:
    with app.app_context():
        session = db.session.get(WaSession, session_id)
        db.session.expunge(session)
        return session


def _send(client, account, session_id: str, text: str) -> str:
    response = client.post(
        f"/api/sessions/{session_id}/send", json={"to": "919876543210", "message": text}, headers=account.headers
    )
    assert response.status_code in (200, 202), response.get_json()
    return response.get_json()["messageId"]


def _status(client, account, message_id: str) -> str:
    return client.get(f"/api/messages/{message_id}", headers=account.headers).get_json()["status"]


def _outbox_texts(runtime, session_id: str) -> list[str]:
    return [entry.get("text") for entry in runtime.engine_host.engine.outbox(session_id)]


@contextmanager
def _alive(app, host_id: str) -> Iterator[None]:
    """Another engine host beats while the block runs (it holds nothing in this process)."""
    stop = threading.Event()

    def beat() -> None:
        with app.app_context():
            while True:
                host_heartbeat(host_id, engine="simulator", sessions=1)
                if stop.wait(0.5):
                    return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _taken_by(app, session_id: str, host_id: str) -> int:
    """Another host takes the session's lease, as it would once this one's ran out."""
    with app.app_context():
        generation = db.session.get(WaSession, session_id).lease_generation + 1
        db.session.execute(
            update(WaSession)
            .where(WaSession.id == session_id)
            .values(engine_host=host_id, lease_generation=generation, lease_until=utcnow() + timedelta(minutes=1))
        )
        db.session.commit()
        return generation


def test_a_session_is_held_under_a_lease_whose_generation_grows_with_each_take(app, client, account, shop, runtime):
    host = runtime.engine_host
    held = _session(app, shop)
    assert held.engine_host == host.id and held.lease_generation >= 1
    assert shop in host.leases and host.leases[shop].generation == held.lease_generation
    detail = client.get(f"/api/sessions/{shop}", headers=account.headers).get_json()
    assert detail["host"] == host.id
    with app.app_context():
        assert shop in hosts_holding()[host.id]

    # Disconnecting lets the lease go; connecting again takes a new one.
    client.post(f"/api/sessions/{shop}/disconnect", headers=account.headers)
    wait_for(lambda: shop not in host.leases, message="the lease to be let go")
    assert _session(app, shop).lease_until is None
    client.post(f"/api/sessions/{shop}/connect", headers=account.headers)
    wait_for(lambda: _session(app, shop).status == "connected", message="the session to connect again")
    assert _session(app, shop).lease_generation == held.lease_generation + 1


def test_a_host_that_lost_the_lease_stops_the_session_and_sends_nothing_for_it(app, client, account, shop, runtime):
    with _alive(app, "elsewhere"):
        _lost_to_a_living_host(app, client, account, shop, runtime)


def _lost_to_a_living_host(app, client, account, shop, runtime) -> None:
    host = runtime.engine_host
    counted = _lease_moves("lost")
    _taken_by(app, shop, "elsewhere")
    # Within a renewal (a third of the 3 s lease) the host finds it lost and stops the session.
    wait_for(lambda: shop not in host.leases, timeout=5, message="the lease to be found lost")
    wait_for(lambda: shop not in host.engine.active_sessions(), message="the session to be stopped here")
    assert _lease_moves("lost") == counted + 1
    with app.app_context():
        assert shop not in hosts_holding()[host.id]

    message_id = _send(client, account, shop, "for the host that holds it now")
    time.sleep(1.5)
    assert _status(client, account, message_id) == "queued"  # waits for "elsewhere"; never sent from here
    assert "for the host that holds it now" not in _outbox_texts(runtime, shop)
    session = _session(app, shop)
    # Stopping it here changed nothing the new holder's connection shows.
    assert (session.status, session.wanted_online, session.engine_host) == ("connected", True, "elsewhere")
    with app.app_context():
        assert queues.queue(engine_host_queue_name("elsewhere")).count >= 1  # its nudge went to the holder


def test_a_state_change_stamped_with_an_old_generation_is_ignored(app, shop, runtime):
    generation = _session(app, shop).lease_generation
    replaced = {"reason": "Another connection replaced this one (stream replaced)", "signal": "stream_replaced"}
    with app.app_context():
        stale = EngineEvent(EngineEventKind.ERROR, shop, {**replaced, LEASE_STAMP: generation - 1})
        engine_event_apply(stale, runtime.engine_host.id)
        unstamped = EngineEvent(EngineEventKind.DISCONNECTED, shop, {"reason": "gone", LEASE_STAMP: None})
        engine_event_apply(unstamped, runtime.engine_host.id)
    session = _session(app, shop)
    assert (session.status, session.paused_at, session.wanted_online) == ("connected", None, True)

    with app.app_context():
        current = EngineEvent(EngineEventKind.RECONNECTING, shop, {LEASE_STAMP: generation})
        engine_event_apply(current, runtime.engine_host.id)
    assert _session(app, shop).status == "reconnecting"


def test_a_host_whose_lease_ran_out_here_sends_nothing_until_it_is_renewed(
    app, client, account, shop, runtime, monkeypatch
):
    host = runtime.engine_host
    renew = host.leases_renew
    monkeypatch.setattr(host, "leases_renew", lambda: None)  # not renewed, as in a paused process
    host.leases[shop].valid_until = 0.0
    message_id = _send(client, account, shop, "after the pause")
    time.sleep(1.0)
    assert _status(client, account, message_id) == "queued"
    assert "after the pause" not in _outbox_texts(runtime, shop)

    with app.app_context():
        renew()  # the database still names this host under the same generation
        host.queue_nudge(shop)
    wait_for(lambda: "after the pause" in _outbox_texts(runtime, shop), message="the message once renewed")


def test_new_sessions_go_to_the_host_with_the_most_room(app, account):
    alive = {
        "big": {"capacity": 100, "draining": False},
        "small": {"capacity": 10, "draining": False},
        "leaving": {"capacity": 1000, "draining": True},
    }
    with app.app_context():
        sessions = [WaSession(user_id=account.user_id, name=f"New {n}") for n in range(12)]
        db.session.add_all(sessions)
        db.session.commit()
        placed = [session_place(session.id, alive) for session in sessions]
        # By sessions named for each against its capacity: "small" gets one while "big" gets
        # ten, and a draining host none, however much room it has.
        assert collections.Counter(placed) == {"big": 11, "small": 1}
        assert sessions_named() == {"big": 11, "small": 1}
        # A session that a living host owns stays where it is; one whose host died moves.
        assert session_place(sessions[1].id, alive) == "small"
        del alive["small"]
        assert session_place(sessions[1].id, alive) == "big"
        assert session_place(sessions[1].id, {}) is None  # no host alive: nowhere to go yet


def test_a_host_above_its_share_hands_sessions_over_a_bounded_number_at_a_time(
    app, client, make_account, runtime, config_overrides
):
    host = runtime.engine_host
    account = make_account(plan="enterprise")
    sessions = [pair_session(client, account, phone=f"4479111000{n:02d}") for n in range(6)]
    assert all(session_id in host.leases for session_id in sessions)
    app.config["REBALANCE_BATCH"] = 2
    counted = _lease_moves("rebalance")
    with app.app_context():
        host_heartbeat("newcomer", engine="simulator", sessions=0)  # a host joins, holding nothing
        moved = host.rebalance()
    # Six sessions over two hosts: three each; two move now, the rest after a pause.
    assert moved == 2
    assert _lease_moves("rebalance") == counted + 2
    handed = [session_id for session_id in sessions if session_id not in host.leases]
    assert len(handed) == 2
    for session_id in handed:
        session = _session(app, session_id)
        assert (session.engine_host, session.lease_until) == ("newcomer", None)
        assert session_id not in host.engine.active_sessions()
    with app.app_context():
        assert queues.queue(engine_host_queue_name("newcomer")).count == 2  # each one's start
        assert host.rebalance() == 0  # paused for two heartbeats


def test_a_stopping_host_drains_its_sessions_to_the_others(app, client, make_account, runtime):
    account = make_account(plan="enterprise")
    sessions = [pair_session(client, account, phone=f"4479112000{n:02d}") for n in range(3)]
    with app.app_context():
        host_heartbeat("other", engine="simulator", sessions=0)
    runtime.stop()
    for session_id in sessions:
        assert _session(app, session_id).engine_host == "other"
    with app.app_context():
        assert queues.queue(engine_host_queue_name("other")).count == 3


def test_a_host_far_below_its_share_gets_sessions_from_those_a_little_above(app, client, make_account, runtime):
    host = runtime.engine_host
    account = make_account(plan="enterprise")
    mine = [pair_session(client, account, phone=f"4479113000{n:02d}") for n in range(4)]
    app.config["REBALANCE_TOLERANCE"] = 0.5  # a share of 3: up to 1.5 above or below is even enough
    with app.app_context():
        until = utcnow() + timedelta(minutes=1)
        named = [("a", n) for n in range(4)] + [("b", 0)]  # "a" holds 4, "b" 1: nine in all, three each
        for owner, n in named:
            db.session.add(WaSession(user_id=account.user_id, name=f"{owner}{n}", engine_host=owner, lease_until=until))
        db.session.commit()
        host_heartbeat("a", engine="simulator", sessions=4)
        host_heartbeat("b", engine="simulator", sessions=1)
        # This host is one above its share, within the tolerance; "b" is two below, past it:
        # this host and "a" split b's shortfall by their excess, one each.
        assert host.rebalance() == 1
    handed = [session_id for session_id in mine if session_id not in host.leases]
    assert [_session(app, session_id).engine_host for session_id in handed] == ["b"]


def test_a_send_waits_for_the_engine_to_connect_the_session_without_spending_attempts(
    app, client, account, shop, runtime
):
    host = runtime.engine_host
    # As right after a restart: the database still says connected, the engine has not
    # connected the session again yet.
    host._connected.discard(shop)
    message_id = _send(client, account, shop, "before the engine is back")
    time.sleep(1.0)
    with app.app_context():
        message = db.session.get(Message, message_id)
        assert (message.status, message.attempts) == ("queued", 0)
        host.engine.session_start(shop)  # the engine reports it connected: the line goes on
    wait_for(lambda: _status(client, account, message_id) in ("sent", "delivered", "read"), message="the send")
    with app.app_context():
        assert db.session.get(Message, message_id).attempts == 1
