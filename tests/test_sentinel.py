"""Redis through Sentinel: the primary killed under load, on the production topology.

tests/test_integration.py's stack (PostgreSQL, gunicorn, `flask worker`, `flask engine-host`)
on a Redis primary, one replica and three Sentinels on loopback, the roles given only
REDIS_SENTINELS (no REDIS_URL: a connection that went around the Sentinels would find no
server). Sends go on steadily while the primary is killed (kill -9) and the Sentinels promote
the replica: no request is answered 500 (503 with Retry-After while there is no primary),
every send answered 200/202 is sent exactly once, those the replica never received
included (the relay lines them up again from the database), and the stack works after.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis

from tests.test_integration import (
    EVENT_SECONDS,
    Stack,
    User,
    _free_port,
    connected_user,
    pair_session,
    session_status,
    stack_started,
    wait_until,
)
from tests.test_outage_roles import outbox, pace_set, sent_once, statuses

pytestmark = pytest.mark.integration

MASTER = "wagate"
SENTINELS = 3
# The primary counts as down after a second without an answer; an election that fails is
# tried again after twice the failover timeout.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 2000
FAILOVER_SECONDS = 20
RECOVERY_SECONDS = 45
SEND_EVERY_SECONDS = 0.05
# Sends accepted before the replica is cut off, while it is, and after the failover.
STEADY_SENDS = 8


@dataclass
class SentinelStack(Stack):
    """The stack on a primary ("redis"), a replica ("redis-replica") and Sentinels ("sentinel-N")."""

    sentinel_ports: list[int] = field(default_factory=list)
    replica_url: str = ""

    def start_redis(self, redis_server: str) -> None:
        super().start_redis(redis_server)
        primary_port = int(self.redis_url.rsplit(":", 1)[1].split("/")[0])
        replica_port = _free_port()
        data = self.root / "redis-replica"
        data.mkdir()
        self.start(
            "redis-replica",
            [redis_server, "--bind", "127.0.0.1", "--port", str(replica_port), "--save", "", "--appendonly", "no"]
            + ["--dir", str(data), "--replicaof", "127.0.0.1", str(primary_port)],
        )
        self.replica_url = f"redis://127.0.0.1:{replica_port}/0"

        def replicating() -> bool:
            with redis.Redis.from_url(self.replica_url, socket_timeout=1) as client:
                return client.info("replication")["master_link_status"] == "up"

        wait_until(replicating, 15, "the replica to replicate the primary")
        for number in range(1, SENTINELS + 1):
            port = _free_port()
            folder = self.root / f"sentinel-{number}"
            folder.mkdir()
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} {SENTINELS // 2 + 1}\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            )
            self.start(f"sentinel-{number}", [redis_server, str(conf), "--sentinel"])
            self.sentinel_ports.append(port)

        def watching() -> bool:
            for port in self.sentinel_ports:
                with redis.Redis(port=port, socket_timeout=1) as sentinel:
                    state = sentinel.sentinel_master(MASTER)
                if state["num-slaves"] != 1 or state["num-other-sentinels"] != SENTINELS - 1:
                    return False
            return True

        wait_until(watching, 30, "every Sentinel to see the replica and the other Sentinels")

    def configure(self) -> None:
        super().configure()
        del self.env["REDIS_URL"]
        self.env["REDIS_SENTINELS"] = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.env["REDIS_SENTINEL_MASTER"] = MASTER

    def primary(self) -> tuple[str, int]:
        """Where the Sentinels say the primary is."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=1) as sentinel:
            host, port = sentinel.sentinel_get_master_addr_by_name(MASTER)
        return host.decode() if isinstance(host, bytes) else host, int(port)


@pytest.fixture(scope="module")
def stack() -> Iterator[SentinelStack]:
    settings = {
        # A send answers 202 once stored and handed over, so sends go on at a steady rate.
        "SEND_WAIT_SECONDS": "0",
        # The relay looks often, so a message Redis lost is lined up again within seconds.
        "RELAY_INTERVAL_SECONDS": "1",
        "RELAY_GRACE_SECONDS": "2",
        "ENGINE_HOST_HEARTBEAT_SECONDS": "1",
    }
    with stack_started("sentinel", settings, stack_class=SentinelStack) as started:
        yield started


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[User]:
    with connected_user(stack, "alice") as user:
        yield user


class Sender:
    """Sends one message after another from a thread, keeping every answer."""

    def __init__(self, user: User, session_id: str) -> None:
        self.user, self.session_id = user, session_id
        self.answers: list[tuple[float, int, dict, dict]] = []  # (at, status, body, headers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            try:
                response = self.user.request(
                    "POST",
                    f"/api/sessions/{self.session_id}/send",
                    json={"to": f"9198766{number:05d}1", "message": f"steady {number}"},
                )
            except OSError as exc:  # no answer at all (a timeout): kept as status 0
                self.answers.append((time.monotonic(), 0, {"error": repr(exc)}, {}))
                continue
            json_body = response.headers.get("Content-Type", "").startswith("application/json")
            body = response.json() if json_body else {"text": response.text[:200]}
            self.answers.append((time.monotonic(), response.status_code, body, dict(response.headers)))
            self._stop.wait(SEND_EVERY_SECONDS)

    def wait_accepted(self, count: int, what: str, since: float = 0.0) -> None:
        wait_until(lambda: len(self.accepted(since)) >= count, FAILOVER_SECONDS, f"{count} {what}", interval=0.05)

    def accepted(self, since: float = 0.0, until: float = float("inf")) -> list[str]:
        answers = [(at, status, body) for at, status, body, _ in self.answers]
        return [body["messageId"] for at, status, body in answers if status in (200, 202) and since <= at < until]


def test_a_primary_killed_under_load_fails_over_without_a_500_or_a_lost_send(stack: SentinelStack, alice: User) -> None:
    with stack.diagnostics():
        session_id = pair_session(stack, alice, "sentinel", "919876543210").session_id
        wait_until(lambda: session_status(alice, session_id)["status"] == "connected", 15, "the session to connect")
        # One message a second leaves the engine host: most sends wait in Redis when it dies.
        pace_set(alice, session_id, minGapSeconds=1, jitterSeconds=0)
        old_primary = stack.primary()
        with Sender(alice, session_id) as sender:
            sender.wait_accepted(STEADY_SENDS, "sends before the replica is cut off")
            # Replication lag at its worst: the replica stops receiving (it cannot log in to
            # the primary again) while the last sends before the kill are accepted, so what the
            # primary took for them never reaches the replica the Sentinels promote.
            with redis.Redis.from_url(stack.replica_url, socket_timeout=1) as replica:
                replica.config_set("masterauth", "not-the-password")
            with redis.Redis.from_url(stack.redis_url, socket_timeout=1) as primary:
                primary.client_kill_filter(_type="replica")
            cut_off = time.monotonic()
            sender.wait_accepted(STEADY_SENDS, "sends the replica does not receive", since=cut_off)
            stack.processes["redis"].kill()
            stack.processes["redis#killed"] = stack.processes.pop("redis")  # not expected to run
            killed = time.monotonic()
            new_primary = wait_until(
                lambda: stack.primary() != old_primary and stack.primary(), FAILOVER_SECONDS, "the Sentinels' failover"
            )
            promoted = time.monotonic()
            sender.wait_accepted(STEADY_SENDS, "sends accepted again after the failover", since=promoted)
        host, port = new_primary
        stack.redis_url = f"redis://{host}:{port}/0"
        pace_set(alice, session_id, minGapSeconds=None, jitterSeconds=None)

        codes = Counter(status for _, status, _, _ in sender.answers)
        assert set(codes) <= {200, 202, 503}, [answer[1:3] for answer in sender.answers if answer[1] not in (200, 202)]
        refused = [(body, headers) for _, status, body, headers in sender.answers if status == 503]
        assert all(headers.get("Retry-After") for _, headers in refused), refused[:3]
        assert {body.get("code") for body, _ in refused} <= {"QUEUE_UNAVAILABLE", "DATABASE_UNAVAILABLE"}, refused[:3]
        accepted = sender.accepted()
        unreplicated = sender.accepted(cut_off, killed)
        assert unreplicated, "no send was accepted while the replica was cut off"

        wait_until(
            lambda: all(status not in ("queued", "scheduled") for status in statuses(stack, accepted).values()),
            RECOVERY_SECONDS,
            "every accepted send to be sent after the failover",
            interval=0.5,
        )
        print(  # noqa: T201 (the figures, shown with -s or -rP)
            f"failover: primary {old_primary[1]} -> {port} in {promoted - killed:.1f}s; answers {dict(codes)}; "
            f"{len(accepted)} accepted ({len(unreplicated)} never replicated), all sent once"
        )
        assert set(statuses(stack, accepted).values()) <= {"sent", "delivered", "read"}, statuses(stack, accepted)
        sent_once(stack, session_id, accepted)
        worker_log = stack.processes["worker"].log_path.read_text(errors="replace")
        assert "lined up again" in worker_log or "Redis lost its data" in worker_log

        # Every role is up, found the new primary, and new work flows.
        stack.assert_running("engine-host", "worker", "web")
        wait_until(stack.workers_registered, 20, "the RQ workers to be registered on the new primary")
        stack.wait_healthy()
        after = alice.request(
            "POST", f"/api/sessions/{session_id}/send", json={"to": "919876519999", "message": "after the failover"}
        )
        assert after.status_code in (200, 202), after.text
        after_id = after.json()["messageId"]
        wait_until(lambda: statuses(stack, [after_id])[after_id] != "queued", 20, "a send made after the failover")
        sent_once(stack, session_id, [after_id])
        # A send answered 503 was not taken: nothing went out but what was accepted.
        assert len(outbox(stack, session_id)) == len(accepted) + 1
        # Its status reached alice's browser from the engine host through the new primary
        # (Socket.IO's message queue), and the rate limits count there too.
        alice.events.wait_for(
            lambda events: any(name == "message_status" and data.get("messageId") == after_id for name, data in events),
            EVENT_SECONDS,
            "the send's status over Socket.IO",
        )
        with redis.Redis(host=host, port=port, socket_timeout=1) as primary:
            assert primary.keys("LIMITS*"), "no rate limit counted on the primary"
