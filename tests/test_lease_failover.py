"""Three engine hosts on one PostgreSQL and Redis: sessions placed by room, a paused host
fenced off, a crashed host back in its place, a rolling restart that ends even.

The production stack of tests/test_integration.py (gunicorn, `flask worker`, `flask
engine-host --id host-a`) plus `host-b` and `host-c`. Throughout, a watcher reads what each
host reports it holds, four times a second: no session is ever reported by two hosts.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.test_integration import (
    HOST_ID,
    VENV_BIN,
    Stack,
    User,
    connected_user,
    pair_session,
    stack_started,
    wait_until,
)
from tests.test_outage_roles import outbox

pytestmark = pytest.mark.integration

HOSTS = (HOST_ID, "host-b", "host-c")
LEASE_SECONDS = 8
SESSIONS = 6


class Watcher:
    """Reads every host's report of the sessions it holds, four times a second, and keeps
    every moment at which a session was reported by two hosts."""

    def __init__(self, redis_url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.doubles: list[tuple[float, str, list[str]]] = []
        self.looks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.redis.close()

    def holding(self) -> dict[str, set[str]]:
        return {host: self.redis.smembers(f"wagate:engine-host:{host}:sessions") for host in HOSTS}

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            holders: dict[str, list[str]] = collections.defaultdict(list)
            for host, sessions in self.holding().items():
                for session_id in sessions:
                    holders[session_id].append(host)
            self.looks += 1
            for session_id, hosts in holders.items():
                if len(hosts) > 1:
                    self.doubles.append((time.time(), session_id, hosts))


def process_name(host_id: str) -> str:
    return "engine-host" if host_id == HOST_ID else host_id


def start_host(stack: Stack, host_id: str) -> None:
    command = [str(VENV_BIN / "flask"), "--app", "app", "engine-host", "--id", host_id]
    stack.start(process_name(host_id), command)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    settings = {
        "ENGINE_HOST_HEARTBEAT_SECONDS": "1",
        "SESSION_LEASE_SECONDS": str(LEASE_SECONDS),
        "SEND_WAIT_SECONDS": "1",
        "DRAIN_SECONDS": "10",
    }
    with stack_started("leases", settings) as started:
        for host_id in HOSTS[1:]:
            start_host(started, host_id)
        wait_until(lambda: set(HOSTS) <= set(alive_hosts(started)), 30, "three hosts")
        yield started


@pytest.fixture(scope="module")
def owner(stack: Stack) -> Iterator[User]:
    with connected_user(stack, "leases") as user:
        stack.flask("set-plan", "users", "set-plan", user.email, "enterprise")
        yield user


@pytest.fixture(scope="module")
def sessions(stack: Stack, owner: User) -> list[str]:
    return [pair_session(stack, owner, f"shop {n}", f"4479113000{n:02d}").session_id for n in range(SESSIONS)]


def alive_hosts(stack: Stack) -> list[str]:
    return stack.health()["checks"]["engineHosts"]["alive"]


def holders(owner: User, session_ids: list[str]) -> dict[str, str | None]:
    return {
        session_id: owner.request("GET", f"/api/sessions/{session_id}").json()["host"] for session_id in session_ids
    }


def send(owner: User, session_id: str, text: str) -> str:
    response = owner.request("POST", f"/api/sessions/{session_id}/send", json={"to": "919876543210", "message": text})
    assert response.status_code in (200, 202), response.text
    return response.json()["messageId"]


def carried(stack: Stack, session_id: str, text: str) -> list[dict]:
    return [entry for entry in outbox(stack, session_id) if entry.get("text") == text]


def test_new_sessions_are_spread_over_the_hosts(stack: Stack, owner: User, sessions: list[str]) -> None:
    with stack.diagnostics():
        counts = collections.Counter(wait_until(lambda: holders(owner, sessions), 10, "every session's host").values())
        assert set(counts) <= set(HOSTS) and max(counts.values()) - min(counts.values(), default=0) <= 1, counts
        assert len(counts) == 3, counts


def test_a_paused_host_sends_nothing_for_the_sessions_another_took(
    stack: Stack, owner: User, sessions: list[str]
) -> None:
    with stack.diagnostics(), Watcher(stack.redis_url) as watcher:
        paused = "host-b"
        lost = [session_id for session_id, host in holders(owner, sessions).items() if host == paused]
        assert lost
        stopped_at = time.time()
        stack.processes[process_name(paused)].signal_group(signal.SIGSTOP)
        try:
            # Its heartbeat ends after 3 s, its leases after LEASE_SECONDS: then the others take them.
            wait_until(
                lambda: all(host not in (None, paused) for host in holders(owner, lost).values()),
                LEASE_SECONDS + 15,
                "the paused host's sessions to be taken over",
            )
            for session_id in lost:
                send(owner, session_id, "while host-b sleeps")
            wait_until(
                lambda: all(carried(stack, session_id, "while host-b sleeps") for session_id in lost),
                10,
                "the moved sessions to send within 10 s",
            )
        finally:
            stack.processes[process_name(paused)].signal_group(signal.SIGCONT)
        for session_id in lost:
            send(owner, session_id, "after host-b woke")
        wait_until(
            lambda: all(carried(stack, session_id, "after host-b woke") for session_id in lost), 15, "the sends after"
        )
        time.sleep(3)  # what the woken host might still do
        for session_id in lost:
            entries = outbox(stack, session_id)
            sent_by_paused = [entry for entry in entries if entry["host"] == paused and _epoch(entry) > stopped_at]
            assert sent_by_paused == [], sent_by_paused
            assert len(carried(stack, session_id, "while host-b sleeps")) == 1
            assert len(carried(stack, session_id, "after host-b woke")) == 1
            status = owner.request("GET", f"/api/sessions/{session_id}/status").json()
            assert status["status"] == "connected", status  # the woken host's "replaced" changed nothing
        assert watcher.looks > 40 and watcher.doubles == [], watcher.doubles[:5]
        stack.assert_running()


def test_a_host_killed_and_back_two_seconds_later_holds_its_sessions_alone(
    stack: Stack, owner: User, sessions: list[str]
) -> None:
    with stack.diagnostics(), Watcher(stack.redis_url) as watcher:
        crashed = "host-c"
        held = [session_id for session_id, host in holders(owner, sessions).items() if host == crashed]
        assert held
        stack.processes[process_name(crashed)].kill()
        time.sleep(2)
        start_host(stack, crashed)
        for session_id in held:
            send(owner, session_id, "around the crash")
        wait_until(
            lambda: all(carried(stack, session_id, "around the crash") for session_id in held),
            20,
            "the crashed host's sessions to send again",
        )
        time.sleep(2)
        for session_id in held:
            assert len(carried(stack, session_id, "around the crash")) == 1
        assert watcher.doubles == [], watcher.doubles[:5]


def test_after_a_rolling_restart_the_hosts_hold_even_shares(stack: Stack, owner: User, sessions: list[str]) -> None:
    with stack.diagnostics(), Watcher(stack.redis_url) as watcher:
        for host_id in HOSTS:
            stack.processes[process_name(host_id)].stop(timeout=20)  # SIGTERM: it hands its sessions over first
            assert host_id not in holders(owner, sessions).values()
            start_host(stack, host_id)
            # As a rolling restart does: the next host stops once this one serves again.
            wait_until(lambda host_id=host_id: host_id in alive_hosts(stack), 30, f"{host_id} to be back")

        def even() -> collections.Counter | None:
            counts = collections.Counter(holders(owner, sessions).values())
            return counts if sorted(counts.values()) == [2, 2, 2] else None

        wait_until(even, 30, "each host to hold a third")
        for session_id in sessions:
            send(owner, session_id, "after the rolling restart")
        wait_until(
            lambda: all(carried(stack, session_id, "after the rolling restart") for session_id in sessions),
            15,
            "every session to send",
        )
        assert watcher.doubles == [], watcher.doubles[:5]


def _epoch(entry: dict) -> float:
    return datetime.fromisoformat(entry["at"]).timestamp()
